"""IEMOCAP: the Interactive Emotional Dyadic Motion Capture database.

Busso et al., Language Resources and Evaluation 2008. Five sessions, each a dyad
of one female and one male actor, improvised and scripted dialogs cut into
utterances.

Layout (``root`` is ``IEMOCAP_full_release`` or the folder that holds it)::

    root/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav
    root/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt
    root/Session1/dialog/transcriptions/Ses01F_impro01.txt
    ...
    root/Session5/...

An utterance id is ``SesNNX_<dialog>_YDDD``: session NN, ``X`` the gender of the
actor wearing the markers in that dialog (a recording convention, not the
speaker), and ``Y`` the gender of who speaks this utterance. So
``Ses01F_impro01_M003`` is spoken by the male actor of session 1, speaker
``Ses01_M``; there are 10 speakers.

Labels are the consensus ``EMOTION`` of the evaluation file's summary lines::

    [6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]

(the bracket at the end is valence, activation, dominance, kept as columns);
the per-annotator lines (``C-E1:``, ``A-E2:`` ...) and ``%`` lines between them
are not read. The usual 4 classes (``IEMOCAP_EMOTIONS``): neutral (``neu``),
happy (``hap`` and ``exc`` merged), angry (``ang``), sad (``sad``); 5531
utterances on the full release. Transcripts come from lines like
``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.``.

Folds are leave-one-session-out, as in the IEMOCAP literature: the manifest's
``session`` is also its ``fold_group``, so :func:`liser.folds.folds_for` tests
on one session, validates on the next and trains on the other three.

Skipped with the reason: every other label (frustrated, surprised, fearful,
disgusted, other, and ``xxx`` for no agreement), wavs without an evaluation
line, names that are not utterance ids, a session in the name that disagrees
with the ``SessionN`` folder, macOS ``._`` files that ship in the release, and
the same utterance found twice (the first by path is kept). Evaluation lines
without a wav are not files, so they are not listed.
"""

from __future__ import annotations

import re
from pathlib import Path

from liser.audio import audio_info
from liser.constants import IEMOCAP_CODES, IEMOCAP_EMOTIONS
from liser.corpora.manifest import Corpus, find_media, SkipFile, make_manifest, make_skips, read_files
from liser.errors import InputNotFound

N_SESSIONS = 5
LEFT_OUT = {
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgusted",
    "oth": "other",
    "xxx": "no agreement",
}
GENDERS = {"F": "female", "M": "male"}

_UTTERANCE = re.compile(r"^Ses(\d{2})[FM]_.+_([FM])\d{3}$")
_EVALUATION = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\t(\S+)\t(\S+)\t\[([^\]]*)\]")
_TRANSCRIPT = re.compile(r"^(\S+)\s+\[[\d.]+-[\d.]+\]:\s?(.*)$")
_SESSION_DIR = re.compile(r"^Session(\d+)$")


def prepare(root: Path) -> Corpus:
    """Read IEMOCAP's 4-class utterances under ``root`` into a manifest."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputNotFound(f"IEMOCAP folder not found: {root}")
    sessions = _session_dirs(root)
    if not sessions:
        raise InputNotFound(f"no Session1..Session{N_SESSIONS} folders in {root} or {root / 'IEMOCAP_full_release'}")
    labels: dict[str, tuple[str, list[float]]] = {}
    transcripts: dict[str, str] = {}
    wavs: list[Path] = []
    ignored: list[str] = []
    for folder in sessions.values():
        for txt in sorted((folder / "dialog" / "EmoEvaluation").glob("*.txt")):
            labels.update(read_evaluation(txt))
        for txt in sorted((folder / "dialog" / "transcriptions").glob("*.txt")):
            transcripts.update(read_transcription(txt))
        media, other = find_media(folder / "sentences" / "wav", (".wav",))
        wavs += media
        ignored += other

    def describe(path: Path) -> dict:
        if path.name.startswith("._"):
            raise SkipFile("macOS metadata file (._ prefix), not audio")
        match = _UTTERANCE.match(path.stem)
        if match is None:
            raise SkipFile(f"name {path.name!r} is not an utterance id SesNNX_<dialog>_YDDD")
        session, gender = int(match.group(1)), match.group(2)
        folder = _session_of(path, sessions)
        if folder != session:
            raise SkipFile(f"session {session} in name but folder Session{folder}")
        if path.stem not in labels:
            raise SkipFile("no line in the dialog's EmoEvaluation file")
        code, vad = labels[path.stem]
        if code not in IEMOCAP_CODES:
            raise SkipFile(f"label {code!r} ({LEFT_OUT.get(code, 'unknown code')}) is not one of the 4 classes")
        label = IEMOCAP_CODES[code]
        info = audio_info(path)
        return {
            "speaker": f"Ses{session:02d}_{gender}",
            "label": label,
            "label_index": IEMOCAP_EMOTIONS.index(label),
            "duration": info.duration,
            "sample_rate": info.sample_rate,
            "video_path": None,
            "gender": GENDERS[gender],
            "session": session,
            "fold_group": f"Session{session}",
            "dialog": path.stem.rsplit("_", 1)[0],
            "improvised": "_impro" in path.stem,
            "emotion_code": code,
            **dict(zip(("valence", "activation", "dominance"), vad)),
            "transcript": transcripts.get(path.stem),
        }

    rows, skips = read_files(wavs, describe)
    return Corpus(
        name="iemocap", root=root, classes=IEMOCAP_EMOTIONS, manifest=make_manifest(rows), skipped=make_skips(skips), ignored=ignored
    )


def read_evaluation(path: Path) -> dict[str, tuple[str, list[float]]]:
    """Utterance id → (emotion code, [valence, activation, dominance]) from the summary lines."""
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        match = _EVALUATION.match(line)
        if match is None:
            continue  # header, '%' lines, blank lines and per-annotator lines
        _, _, utt, code, vad = match.groups()
        try:
            scores = [float(v) for v in vad.split(",")]
        except ValueError:
            scores = []
        out[utt] = (code.lower(), scores)
    return out


def read_transcription(path: Path) -> dict[str, str]:
    """Utterance id → what is said, from lines ``<id> [start-end]: text``."""
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        match = _TRANSCRIPT.match(line.strip())
        if match is not None:
            out[match.group(1)] = match.group(2).strip()
    return out


def _session_dirs(root: Path) -> dict[int, Path]:
    """Session number → folder, looking in ``root`` and in ``root/IEMOCAP_full_release``."""
    for base in (root, root / "IEMOCAP_full_release"):
        found = {}
        for child in sorted(base.glob("Session*")) if base.is_dir() else ():
            match = _SESSION_DIR.match(child.name)
            if match and child.is_dir() and 1 <= int(match.group(1)) <= N_SESSIONS:
                found[int(match.group(1))] = child
        if found:
            return found
    return {}


def _session_of(path: Path, sessions: dict[int, Path]) -> int:
    return next(n for n, folder in sessions.items() if folder in path.parents)
