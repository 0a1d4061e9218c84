"""The manifest: one table that every corpus adapter returns.

Adapters read a corpus from its native layout and never decode audio; decoding,
quality checks and features happen once, in :mod:`liser.features`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from liser.audio import AudioError

# Columns every manifest has, in this order. Adapters may add corpus-specific ones
# after them (gender, intensity, statement, ...).
MANIFEST_COLUMNS = (
    "clip_id",  # unique within the corpus, stable across runs (the file stem)
    "path",  # absolute path of the file the audio is read from
    "speaker",  # speaker id as a string; folds group by it
    "label",  # class name, or None for unlabeled corpora
    "label_index",  # index into Corpus.classes, or -1 for unlabeled corpora
    "duration",  # seconds, from the file header
    "sample_rate",  # native rate, from the file header
    "video_path",  # the video for audio-visual clips, else None
)

SKIP_COLUMNS = ("path", "reason")


@dataclass
class Corpus:
    """A corpus read into a manifest, with the files it could not use and why."""

    name: str
    root: Path
    classes: tuple[str, ...]  # empty for unlabeled corpora
    manifest: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SKIP_COLUMNS)))
    ignored: list[str] = field(default_factory=list)  # files in the folder that are not media at all

    @property
    def labeled(self) -> bool:
        return bool(self.classes)

    @property
    def spec(self) -> str:
        """The ``name:path`` spec that reads this corpus again (``load_corpus``)."""
        return f"{self.name}:{self.root}"

    def manifest_hash(self) -> str:
        """A short hash of what the corpus holds (ids, labels, speakers), for run tags."""
        cols = ["clip_id", "speaker", "label"]
        text = self.manifest[cols].astype(str).to_csv(index=False)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """Build a manifest from row dicts, with the standard columns first, sorted by clip id."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    for col in MANIFEST_COLUMNS:
        if col not in frame:
            frame[col] = None
    extra = [c for c in frame.columns if c not in MANIFEST_COLUMNS]
    frame = frame[list(MANIFEST_COLUMNS) + extra].sort_values("clip_id", kind="stable")
    frame["speaker"] = frame["speaker"].astype(str)
    frame["label_index"] = frame["label_index"].astype(int)
    return frame.reset_index(drop=True)


def make_skips(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """Build the skipped-files table from (path, reason) pairs."""
    return pd.DataFrame(rows, columns=list(SKIP_COLUMNS))


class SkipFile(Exception):
    """A file an adapter will not use; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def find_media(root: Path, suffixes: Iterable[str]) -> tuple[list[Path], list[str]]:
    """Files under ``root`` whose extension is one of ``suffixes`` (any case: ``.WAV`` too), sorted,
    and every other file, so that nothing in a corpus folder vanishes from the counts."""
    want = {s.lower() for s in suffixes}
    media, ignored = [], []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        (media if path.suffix.lower() in want else ignored).append(path)
    return media, [str(p) for p in ignored]


def read_files(paths: Iterable[Path], describe: Callable[[Path], dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Manifest rows for the usable files, and (path, reason) for the others.

    ``describe(path)`` returns a file's row (fields from its name, duration and rate from
    its header) or raises SkipFile / AudioError. A file whose stem was already used is
    skipped as a duplicate, so clip ids stay unique.
    """
    rows: list[dict] = []
    skips: list[tuple[str, str]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            if path.stem in seen:
                raise SkipFile(f"duplicate of {seen[path.stem]}")
            row = describe(path)
        except (SkipFile, AudioError) as err:
            skips.append((str(path), err.reason))
            continue
        seen[path.stem] = path
        rows.append({"clip_id": path.stem, "path": str(path), **row})
    return rows, skips
