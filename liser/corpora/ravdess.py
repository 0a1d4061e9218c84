"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song.

Livingstone & Russo, PLoS ONE 2018; the paper's first benchmark (section 3.1).

Layout::

    root/Actor_01/03-01-01-01-01-01-01.wav
    ...
    root/Actor_24/03-01-08-02-02-02-24.wav

Files are found by a recursive ``*.wav`` glob, so the ``Actor_XX`` folders may sit
directly under ``root``, deeper (the Kaggle zip nests them), or be absent with the
files directly under ``root``.

Each name is seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA``:

==========  =================================================================
modality    01 full audio-video, 02 video-only, 03 audio-only
vocal       01 speech, 02 song
emotion     01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
            07 disgust, 08 surprised (``RAVDESS_EMOTIONS``, in code order)
intensity   01 normal, 02 strong; neutral exists only at normal intensity
statement   01 "Kids are talking by the door", 02 "Dogs are sitting by the door"
repetition  01 or 02
actor       01..24; odd numbers are male, even female (12 and 12)
==========  =================================================================

Only audio-only speech (``03-01-...``) is used, as in the paper: 60 clips per
actor (neutral 2 statements x 2 repetitions, seven other emotions x 2
intensities x 2 statements x 2 repetitions), 1440 in all, recorded at 48 kHz.

Quirks and what is done about them: labels come only from the name, never
guessed; names that do not parse, codes out of range, song, other modalities,
neutral at strong intensity (never recorded, so the name is wrong) and an actor
field that disagrees with its ``Actor_XX`` folder are skipped with the reason.
The same name found twice (two copies of the download) keeps the first by path.
Headers are read for duration and rate; audio is not decoded here.
"""

from __future__ import annotations

import re
from pathlib import Path

from liser.audio import audio_info
from liser.constants import RAVDESS_EMOTIONS
from liser.corpora.manifest import Corpus, find_media, SkipFile, make_manifest, make_skips, read_files
from liser.errors import InputNotFound

MODALITIES = {"01": "full-AV", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
REPETITIONS = ("01", "02")
N_ACTORS = 24

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d+)$", re.IGNORECASE)


def prepare(root: Path) -> Corpus:
    """Read RAVDESS audio-only speech under ``root`` into a manifest."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputNotFound(f"RAVDESS folder not found: {root}")
    wavs, ignored = find_media(root, (".wav",))
    rows, skips = read_files(wavs, _describe)
    return Corpus(
        name="ravdess", root=root, classes=RAVDESS_EMOTIONS, manifest=make_manifest(rows), skipped=make_skips(skips), ignored=ignored
    )


def _describe(path: Path) -> dict:
    fields, reason = parse_name(path)
    if reason is not None:
        raise SkipFile(reason)
    info = audio_info(path)
    label_index = RAVDESS_EMOTIONS.index(fields["label"])
    return {"label_index": label_index, "duration": info.duration, "sample_rate": info.sample_rate, "video_path": None, **fields}


def parse_name(path: Path) -> tuple[dict, None] | tuple[None, str]:
    """Fields of a RAVDESS file name, or the reason it is not a usable speech clip."""
    match = _NAME.match(path.stem)
    if match is None:
        return None, f"name {path.name!r} is not MM-VV-EE-II-SS-RR-AA"
    modality, vocal, emotion, intensity, statement, repetition, actor = match.groups()
    checks = (
        (MODALITIES, modality, "modality"),
        (VOCAL_CHANNELS, vocal, "vocal channel"),
        (INTENSITIES, intensity, "intensity"),
        (STATEMENTS, statement, "statement"),
        (REPETITIONS, repetition, "repetition"),
    )
    for known, code, what in checks:
        if code not in known:
            return None, f"unknown {what} code {code}"
    if not 1 <= int(emotion) <= len(RAVDESS_EMOTIONS):
        return None, f"unknown emotion code {emotion}"
    if not 1 <= int(actor) <= N_ACTORS:
        return None, f"actor {actor} out of range 01..{N_ACTORS}"
    if modality != "03":
        return None, f"{MODALITIES[modality]} (modality {modality}), not audio-only"
    if vocal != "01":
        return None, f"song (vocal channel {vocal}), not speech"
    label = RAVDESS_EMOTIONS[int(emotion) - 1]
    if label == "neutral" and INTENSITIES[intensity] == "strong":
        return None, "neutral with strong intensity does not exist in RAVDESS"
    folder = _ACTOR_DIR.match(path.parent.name)
    if folder is not None and int(folder.group(1)) != int(actor):
        return None, f"actor {actor} in name but folder {path.parent.name}"
    fields = {
        "speaker": actor,
        "label": label,
        "gender": "male" if int(actor) % 2 else "female",
        "intensity": INTENSITIES[intensity],
        "statement": int(statement),
        "repetition": int(repetition),
        "transcript": STATEMENTS[statement],
    }
    return fields, None
