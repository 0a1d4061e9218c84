"""The teacher-output cache: a teacher runs once per clip, never per trial or per epoch.

Entries are content-addressed::

    <cache>/teachers/<teacher-key>/<clip-sha1[:2]>/<clip-sha1>.npz   probs [n, K], valid [n]
    <cache>/teachers/<teacher-key>/<clip-sha1[:2]>/<clip-sha1>.json  why the clip has no output

``teacher-key`` hashes the teacher's kind, its checkpoint hash and its settings, so a
re-run is a no-op, a changed checkpoint recomputes only that teacher's entries, a
renamed clip is not recomputed, and a run killed half-way resumes where it stopped
(each entry is written atomically as soon as it exists). A corrupt entry is detected
on read and recomputed. :func:`run_teacher` gathers the entries of a corpus into the
teacher-output file the trainer reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from liser.corpora.manifest import Corpus
from liser.storage import ClipStore, ClipTask, ContentHashes, default_cache_dir
from liser.targets import TeacherOutputs

# predict(path) -> (probs [n_segments, K], valid [n_segments] or None). A per-clip data
# problem raises an exception with a ``reason`` attribute (AudioError, VideoError):
# the clip is skipped and counted; any other exception is a bug and propagates.
Predict = Callable[[Path], tuple[np.ndarray, np.ndarray | None]]


def teacher_key(kind: str, checkpoint_hash: str, settings: dict) -> str:
    text = json.dumps({"kind": kind, "checkpoint": checkpoint_hash, "settings": settings}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class CacheRun:
    """What one pass over a corpus did: how many clips a teacher ran on, and what was reused."""

    computed: int = 0
    cached: int = 0
    corrupt: int = 0  # entries found broken and recomputed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    no_target: int = 0  # clips whose every segment is invalid (e.g. no face anywhere)

    def as_dict(self) -> dict:
        return {"computed": self.computed, "cached": self.cached, "corrupt": self.corrupt, "skipped": len(self.skipped), "no_target": self.no_target}


def _valid_entry(entry: dict[str, np.ndarray]) -> bool:
    probs, valid = entry.get("probs"), entry.get("valid")
    return probs is not None and valid is not None and probs.ndim == 2 and len(valid) == len(probs) and bool(np.all(np.isfinite(probs)))


def run_teacher(
    corpus: Corpus,
    kind: str,
    classes: tuple[str, ...],
    checkpoint_hash: str,
    settings: dict,
    predict: "Predict | ClipTask",
    *,
    segment_seconds: float,
    cache_dir: str | Path | None = None,
    meta: dict | None = None,
    progress: bool = True,
    pool=None,
) -> tuple[TeacherOutputs, CacheRun]:
    """The teacher's outputs for every clip of ``corpus``, running it only where the cache lacks them.

    ``predict`` is a per-clip function, or a :class:`~liser.storage.ClipTask` whose entries are
    ``{"probs", "valid"}`` (what worker processes run; ``pool`` says how many, and where).
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = teacher_key(kind, checkpoint_hash, settings)
    store = ClipStore(root / "teachers" / key, ContentHashes(root / "hashes.json"))

    def compute(path: Path) -> dict[str, np.ndarray]:
        probs, mask = predict(path)
        probs = np.asarray(probs, np.float32)
        return {"probs": probs, "valid": np.ones(len(probs), bool) if mask is None else np.asarray(mask, bool)}

    rows = corpus.manifest[["clip_id", "path"]].itertuples(index=False)
    stored = store.map(
        rows, predict if isinstance(predict, ClipTask) else compute, check=_valid_entry, total=len(corpus.manifest),
        desc=f"{kind} teacher", progress=progress, pool=pool,
    )
    segments = {c: e["probs"] for c, e in stored.arrays.items()}
    valid = {c: e["valid"].astype(bool) for c, e in stored.arrays.items()}
    run = CacheRun(stored.computed - stored.new_skips, stored.cached, stored.corrupt, stored.skipped, sum(not v.any() for v in valid.values()))
    info = dict(meta or {}, teacher_key=key, checkpoint_hash=checkpoint_hash, settings=settings, cache=run.as_dict())
    info["skipped"] = [{"path": p, "reason": r} for p, r in run.skipped]
    return TeacherOutputs.from_segments(kind, classes, segments, valid, segment_seconds, info), run
