"""CREMA-D: the Crowd-sourced Emotional Multimodal Actors Dataset.

Cao et al., IEEE Trans. Affective Computing 2014; the paper's second benchmark
(section 3.1).

Layout (``root`` may be the ``AudioWAV`` folder itself or its parent)::

    root/AudioWAV/1001_DFA_ANG_XX.wav
    ...
    root/AudioWAV/1091_WSI_SAD_XX.wav
    root/VideoDemographics.csv          (optional: ActorID, Age, Sex, Race, Ethnicity)

The demographics table is also accepted inside the folder that holds the clips.

Each name is ``AAAA_SSS_EEE_LL``:

========  ===================================================================
actor     1001..1091 (91 actors, 48 male and 43 female)
sentence  one of 12 three-letter codes, written out in ``SENTENCES``
emotion   ANG DIS FEA HAP NEU SAD → angry disgust fearful happy neutral sad
          (``CREMAD_CODES`` → ``CREMAD_EMOTIONS``, 6 classes)
level     LO low, MD medium, HI high, XX unspecified; only the sentence IEO
          was recorded at graded levels
========  ===================================================================

7442 clips in all. Labels are the *acted* emotion from the name, as in the paper;
the crowd-sourced ratings (``tabulatedVotes.csv``) are not read.

Quirks and what is done about them: a few clips carry no audible speech (e.g.
``1076_MTI_SAD_XX``); they are detected by content when decoded
(:func:`liser.audio.load_audio` raises "silent"), never from a hard-coded list.
Gender is not in the name: when ``VideoDemographics.csv`` sits next to
``AudioWAV`` its ``Sex`` column fills a ``gender`` column, otherwise there is no
such column. Bad names, unknown codes and actors out of range are skipped with
the reason; the same name found twice keeps the first by path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from liser.audio import audio_info
from liser.constants import CREMAD_CODES, CREMAD_EMOTIONS
from liser.corpora.manifest import Corpus, find_media, SkipFile, make_manifest, make_skips, read_files
from liser.errors import DataError, InputNotFound

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
ACTORS = range(1001, 1092)
DEMOGRAPHICS_FILE = "VideoDemographics.csv"

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def prepare(root: Path) -> Corpus:
    """Read CREMA-D's ``AudioWAV`` clips under ``root`` into a manifest."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputNotFound(f"CREMA-D folder not found: {root}")
    audio_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    sexes = _read_sexes(audio_dir.parent / DEMOGRAPHICS_FILE) or _read_sexes(audio_dir / DEMOGRAPHICS_FILE)

    def describe(path: Path) -> dict:
        fields, reason = parse_name(path)
        if reason is not None:
            raise SkipFile(reason)
        info = audio_info(path)
        if sexes is not None:
            fields["gender"] = sexes.get(int(fields["speaker"]))
        label_index = CREMAD_EMOTIONS.index(fields["label"])
        return {"label_index": label_index, "duration": info.duration, "sample_rate": info.sample_rate, "video_path": None, **fields}

    wavs, ignored = find_media(audio_dir, (".wav",))
    rows, skips = read_files(wavs, describe)
    return Corpus(
        name="cremad", root=root, classes=CREMAD_EMOTIONS, manifest=make_manifest(rows), skipped=make_skips(skips), ignored=ignored
    )


def parse_name(path: Path) -> tuple[dict, None] | tuple[None, str]:
    """Fields of a CREMA-D file name, or the reason it cannot be used."""
    match = _NAME.match(path.stem)
    if match is None:
        return None, f"name {path.name!r} is not AAAA_SSS_EEE_LL"
    actor, sentence, emotion, level = match.groups()
    if int(actor) not in ACTORS:
        return None, f"actor {actor} out of range {ACTORS.start}..{ACTORS.stop - 1}"
    if sentence not in SENTENCES:
        return None, f"unknown sentence code {sentence}"
    if emotion not in CREMAD_CODES:
        return None, f"unknown emotion code {emotion}"
    if level not in LEVELS:
        return None, f"unknown level code {level}"
    fields = {
        "speaker": actor,
        "label": CREMAD_EMOTIONS[CREMAD_CODES.index(emotion)],
        "sentence": sentence,
        "level": level,
        "transcript": SENTENCES[sentence],
    }
    return fields, None


def _read_sexes(csv_path: Path) -> dict[int, str] | None:
    """ActorID → "male"/"female" from the demographics table, or None when it is absent."""
    if not csv_path.is_file():
        return None
    table = pd.read_csv(csv_path)
    if not {"ActorID", "Sex"} <= set(table.columns):
        raise DataError(f"{csv_path} lacks ActorID/Sex columns (has {list(table.columns)})")
    return {int(a): str(s).strip().lower() for a, s in zip(table["ActorID"], table["Sex"], strict=True)}
