"""The teacher-output file: what a frozen teacher said about each unlabeled clip.

Format (one ``.npz`` file per teacher, written by :meth:`TeacherOutputs.save`):

``clip_ids``  str array [N]      clip ids, matching the unlabeled corpus manifest
``offsets``   int64 [N + 1]      clip i owns segment rows ``offsets[i]:offsets[i+1]``
``probs``     float32 [S, K]     one softmax per 0.5 s segment (section 3.4); segment s
                                 of a clip covers seconds ``[0.5 s, 0.5 (s + 1))``
``valid``     bool [S]           False where the teacher had no input (a video window
                                 with too few faces); such rows are ignored
``meta``      str (JSON)         ``kind`` ("speech" | "video"), ``classes`` (class order
                                 of the K columns), ``segment_seconds``, and free-form
                                 provenance (teacher name, checkpoint hash, metrics)

The trainer averages the valid segments inside each sampled 3 s crop, as the paper
averages its 0.5 s teacher outputs over the 3 s window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from liser.constants import TEACHER_SEGMENT_SECONDS

KINDS = ("speech", "video")


class TeacherFileError(ValueError):
    """A teacher-output file that cannot be used; the message names the file and the fix."""


@dataclass
class TeacherOutputs:
    kind: str
    classes: tuple[str, ...]
    clip_ids: list[str]
    offsets: np.ndarray
    probs: np.ndarray
    valid: np.ndarray
    segment_seconds: float = TEACHER_SEGMENT_SECONDS
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {cid: i for i, cid in enumerate(self.clip_ids)}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_segments(
        cls,
        kind: str,
        classes: tuple[str, ...] | list[str],
        segments: dict[str, np.ndarray],
        valid: dict[str, np.ndarray] | None = None,
        segment_seconds: float = TEACHER_SEGMENT_SECONDS,
        meta: dict | None = None,
    ) -> "TeacherOutputs":
        """Build from ``{clip_id: probs [n_segments, K]}`` (and optional validity masks)."""
        ids = list(segments)
        counts = [len(segments[c]) for c in ids]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        k = len(classes)
        probs = (
            np.concatenate([np.asarray(segments[c], np.float32).reshape(-1, k) for c in ids])
            if ids
            else np.zeros((0, k), np.float32)
        )
        if valid is None:
            mask = np.ones(len(probs), bool)
        else:
            mask = np.concatenate([np.asarray(valid.get(c, np.ones(n, bool)), bool) for c, n in zip(ids, counts)]) if ids else np.zeros(0, bool)
        out = cls(kind, tuple(classes), ids, offsets, probs, mask, segment_seconds, dict(meta or {}))
        out.validate("<in memory>")
        return out

    # ------------------------------------------------------------------ file I/O
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta, kind=self.kind, classes=list(self.classes), segment_seconds=self.segment_seconds)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            clip_ids=np.asarray(self.clip_ids, dtype=str),
            offsets=self.offsets,
            probs=self.probs.astype(np.float32),
            valid=self.valid,
            meta=np.asarray(json.dumps(meta)),
        )
        tmp.replace(path)  # atomic: a crash never leaves half a file behind
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TeacherOutputs":
        path = Path(path)
        if not path.exists():
            raise TeacherFileError(f"{path}: teacher-output file not found; check the path or run `liser teacher cache`.")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                out = cls(
                    kind=meta.pop("kind"),
                    classes=tuple(meta.pop("classes")),
                    segment_seconds=float(meta.pop("segment_seconds")),
                    clip_ids=[str(c) for c in data["clip_ids"]],
                    offsets=data["offsets"].astype(np.int64),
                    probs=data["probs"].astype(np.float32),
                    valid=data["valid"].astype(bool),
                    meta=meta,
                )
        except TeacherFileError:
            raise
        except Exception as exc:  # zip errors, missing keys, bad JSON: all mean a broken file
            raise TeacherFileError(
                f"{path}: not a readable teacher-output file ({type(exc).__name__}: {exc}); "
                "regenerate it with `liser teacher cache` (see liser/teachers/outputs.py for the format)."
            ) from exc
        out.validate(str(path))
        return out

    def validate(self, where: str) -> None:
        """Check shapes and probabilities; raise TeacherFileError naming ``where``."""
        n, k = len(self.clip_ids), len(self.classes)
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {KINDS}")
        if len(self.offsets) != n + 1 or (n and (self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0))):
            problems.append("offsets do not index the clips")
        elif self.offsets[-1] != len(self.probs):
            problems.append(f"offsets end at {self.offsets[-1]} but there are {len(self.probs)} segment rows")
        if self.probs.ndim != 2 or self.probs.shape[1] != k:
            problems.append(f"probs has shape {self.probs.shape}, expected [segments, {k}]")
        if len(self.valid) != len(self.probs):
            problems.append("valid mask and probs differ in length")
        if len(set(self.clip_ids)) != n:
            problems.append("clip ids repeat")
        if not problems:
            rows = self.probs[self.valid]
            if not np.all(np.isfinite(rows)):
                problems.append("probs hold NaN or inf")
            elif len(rows) and (np.any(rows < -1e-6) or np.abs(rows.sum(1) - 1).max() > 1e-3):
                problems.append("valid rows are not probability distributions (each must sum to 1)")
        if problems:
            raise TeacherFileError(f"{where}: invalid teacher-output file: " + "; ".join(problems) + ".")

    # ------------------------------------------------------------------ lookup
    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._index

    def segments(self, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The clip's segment softmaxes [n, K] and their validity mask [n]."""
        i = self._index[clip_id]
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.probs[lo:hi], self.valid[lo:hi]

    def window_target(self, clip_id: str, start_s: float, length_s: float) -> np.ndarray | None:
        """Mean softmax of the valid segments that lie in ``[start_s, start_s + length_s)``.

        A segment counts when its midpoint is inside the window. Returns None when no
        valid segment does (the term is then masked for that sample).
        """
        probs, valid = self.segments(clip_id)
        mids = (np.arange(len(probs)) + 0.5) * self.segment_seconds
        inside = valid & (mids >= start_s) & (mids < start_s + length_s)
        if not inside.any():
            return None
        mean = probs[inside].mean(0)
        return (mean / mean.sum()).astype(np.float32)


def find_teacher_files(directory: str | Path) -> dict[str, Path]:
    """The ``speech.npz`` / ``video.npz`` files present in a teacher-output folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TeacherFileError(f"{directory}: teacher-output folder not found; pass a folder holding speech.npz and/or video.npz.")
    found = {kind: directory / f"{kind}.npz" for kind in KINDS if (directory / f"{kind}.npz").exists()}
    if not found:
        raise TeacherFileError(f"{directory}: holds neither speech.npz nor video.npz; see liser/teachers/outputs.py for the format.")
    return found
