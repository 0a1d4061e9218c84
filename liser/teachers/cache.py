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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from liser.corpora.manifest import Corpus
from liser.storage import ContentHashes, default_cache_dir, write_atomic
from liser.teachers.outputs import TeacherOutputs

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


def _read_entry(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as entry:
            probs, valid = entry["probs"], entry["valid"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if probs.ndim != 2 or len(valid) != len(probs) or not np.all(np.isfinite(probs)):
        return None
    return probs, valid


def run_teacher(
    corpus: Corpus,
    kind: str,
    classes: tuple[str, ...],
    checkpoint_hash: str,
    settings: dict,
    predict: Predict,
    *,
    segment_seconds: float,
    cache_dir: str | Path | None = None,
    meta: dict | None = None,
    progress: bool = True,
) -> tuple[TeacherOutputs, CacheRun]:
    """The teacher's outputs for every clip of ``corpus``, running it only where the cache lacks them."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = teacher_key(kind, checkpoint_hash, settings)
    store = root / "teachers" / key
    hashes = ContentHashes(root / "hashes.json")
    run = CacheRun()
    segments: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    rows = corpus.manifest[["clip_id", "path"]].itertuples(index=False)
    bar = tqdm(rows, total=len(corpus.manifest), desc=f"{kind} teacher", unit="clip", disable=not progress)
    try:
        for clip_id, path in bar:
            path = Path(path)
            try:
                digest = hashes(path)
            except OSError as exc:
                run.skipped.append((str(path), f"unreadable ({exc.strerror or exc})"))
                continue
            npz, err = store / digest[:2] / f"{digest}.npz", store / digest[:2] / f"{digest}.json"
            if err.exists():
                run.skipped.append((str(path), json.loads(err.read_text())["reason"]))
                run.cached += 1
                continue
            entry = _read_entry(npz) if npz.exists() else None
            if entry is None:
                run.corrupt += npz.exists()
                try:
                    probs, mask = predict(path)
                except Exception as exc:
                    if not hasattr(exc, "reason"):
                        raise
                    write_atomic(err, lambda fh: fh.write(json.dumps({"reason": exc.reason}).encode()))
                    run.skipped.append((str(path), exc.reason))
                    continue
                probs = np.asarray(probs, np.float32)
                mask = np.ones(len(probs), bool) if mask is None else np.asarray(mask, bool)
                write_atomic(npz, lambda fh: np.savez(fh, probs=probs, valid=mask))
                entry = (probs, mask)
                run.computed += 1
            else:
                run.cached += 1
            segments[clip_id], valid[clip_id] = entry
            run.no_target += not entry[1].any()
            bar.set_postfix(ran=run.computed, cached=run.cached)
    finally:
        hashes.save()
    info = dict(meta or {}, teacher_key=key, checkpoint_hash=checkpoint_hash, settings=settings, cache=run.as_dict())
    info["skipped"] = [{"path": p, "reason": r} for p, r in run.skipped]
    return TeacherOutputs.from_segments(kind, classes, segments, valid, segment_seconds, info), run
