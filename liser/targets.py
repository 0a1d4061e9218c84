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
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from liser.constants import TEACHER_SEGMENT_SECONDS

KINDS = ("speech", "video")


from liser.errors import TeacherFileError  # noqa: E402  (re-exported)
from liser.storage import write_atomic  # noqa: E402


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
        meta = dict(self.meta, kind=self.kind, classes=list(self.classes), segment_seconds=self.segment_seconds)
        return _save(path, meta, offsets=self.offsets, probs=self.probs.astype(np.float32), valid=self.valid, clip_ids=self.clip_ids)

    @classmethod
    def load(cls, path: str | Path) -> "TeacherOutputs":
        def build(data, meta: dict) -> "TeacherOutputs":
            return cls(
                kind=meta.pop("kind"), classes=tuple(meta.pop("classes")), segment_seconds=float(meta.pop("segment_seconds")),
                clip_ids=[str(c) for c in data["clip_ids"]], offsets=data["offsets"].astype(np.int64),
                probs=data["probs"].astype(np.float32), valid=data["valid"].astype(bool), meta=meta,
            )

        return _load(path, build, "teacher-output file", "regenerate it with `liser teacher cache`")

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


def _save(path: str | Path, meta: dict, *, clip_ids: list[str], **arrays: np.ndarray) -> Path:
    """Write a teacher file atomically: a crash never leaves half a file behind.

    A file that already holds exactly this content is left untouched: studies key their
    runs by the file's hash, and a zip archive's bytes change with its write time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"clip_ids": np.asarray(clip_ids, dtype=str), "meta": np.asarray(json.dumps(meta)), **arrays}
    if _holds(path, content):
        return path
    return write_atomic(path, lambda f: np.savez(f, **content))


def _holds(path: Path, content: dict[str, np.ndarray]) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            return set(data.files) == set(content) and all(
                data[k].dtype == v.dtype and data[k].shape == v.shape and np.array_equal(data[k], v) for k, v in content.items()
            )
    except Exception:  # unreadable: overwrite it
        return False


def _load(path: str | Path, build, what: str, fix: str):
    """Read a teacher file with ``build(data, meta)`` and validate it; any breakage is a TeacherFileError naming the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise TeacherFileError(f"{path}: {what} not found; check the path or {fix}.")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = build(data, json.loads(str(data["meta"])))
    except Exception as exc:  # zip errors, missing keys, bad JSON: all mean a broken file
        raise TeacherFileError(
            f"{path}: not a readable {what} ({type(exc).__name__}: {exc}); {fix} (see liser/targets.py for the format)."
        ) from exc
    out.validate(str(path))
    return out


def content_hash(path: str | Path) -> str:
    """SHA-1 of what a teacher file holds: its arrays and its metadata, less the record of how
    the cache made it this time (``cache``: computed vs reused), which says nothing of the outputs."""
    import hashlib

    digest = hashlib.sha1()
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in sorted(data.files):
                value = data[key]
                if key == "meta":
                    meta = json.loads(str(value))
                    meta.pop("cache", None)
                    digest.update(json.dumps(meta, sort_keys=True).encode())
                else:
                    digest.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
                    digest.update(np.ascontiguousarray(value).tobytes())
    except Exception as exc:
        raise TeacherFileError(f"{path}: not a readable teacher file ({type(exc).__name__}: {exc}); regenerate it with `liser teacher cache`.") from exc
    return digest.hexdigest()


def read_meta(path: str | Path) -> dict:
    """A teacher file's metadata alone (provenance, metrics), without reading its arrays."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))
    except Exception as exc:
        raise TeacherFileError(f"{path}: not a readable teacher file ({type(exc).__name__}: {exc}); regenerate it with `liser teacher cache`.") from exc


CLIP_KINDS = ("prosodic", "linguistic", "upstream")


@dataclass
class ClipOutputs:
    """Clip-level teacher outputs: logits and an embedding per clip.

    EmoDistill's prosodic and linguistic teachers (one file per fold, on the labeled
    corpus) and NSL's upstream model (one file, on the target corpus) write these.
    Logits are kept before the softmax because EmoDistill applies its own temperature.

    Format (``.npz``): ``clip_ids`` str [N], ``logits`` float32 [N, K], ``embeddings``
    float32 [N, D], ``meta`` str (JSON: ``kind``, ``classes``, provenance such as
    ``train_speakers`` and the teacher's own ``val_uar``).
    """

    kind: str
    classes: tuple[str, ...]
    clip_ids: list[str]
    logits: np.ndarray
    embeddings: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {cid: i for i, cid in enumerate(self.clip_ids)}

    @classmethod
    def from_rows(cls, kind: str, classes, rows: dict[str, tuple[np.ndarray, np.ndarray]], meta: dict | None = None) -> "ClipOutputs":
        """Build from ``{clip_id: (logits [K], embedding [D])}``."""
        ids = list(rows)
        k = len(classes)
        logits = np.stack([np.asarray(rows[c][0], np.float32).reshape(k) for c in ids]) if ids else np.zeros((0, k), np.float32)
        emb = np.stack([np.asarray(rows[c][1], np.float32).reshape(-1) for c in ids]) if ids else np.zeros((0, 0), np.float32)
        out = cls(kind, tuple(classes), ids, logits, emb, dict(meta or {}))
        out.validate("<in memory>")
        return out

    def save(self, path: str | Path) -> Path:
        meta = dict(self.meta, kind=self.kind, classes=list(self.classes))
        return _save(path, meta, logits=self.logits.astype(np.float32), embeddings=self.embeddings.astype(np.float32), clip_ids=self.clip_ids)

    @classmethod
    def load(cls, path: str | Path) -> "ClipOutputs":
        def build(data, meta: dict) -> "ClipOutputs":
            return cls(
                kind=meta.pop("kind"), classes=tuple(meta.pop("classes")), clip_ids=[str(c) for c in data["clip_ids"]],
                logits=data["logits"].astype(np.float32), embeddings=data["embeddings"].astype(np.float32), meta=meta,
            )

        return _load(path, build, "clip-level teacher file", "fit the teacher again")

    def validate(self, where: str) -> None:
        n, k = len(self.clip_ids), len(self.classes)
        problems = []
        if self.kind not in CLIP_KINDS:
            problems.append(f"kind {self.kind!r} is not one of {CLIP_KINDS}")
        if self.logits.shape != (n, k):
            problems.append(f"logits has shape {self.logits.shape}, expected [{n}, {k}]")
        if self.embeddings.ndim != 2 or len(self.embeddings) != n:
            problems.append(f"embeddings has shape {self.embeddings.shape}, expected [{n}, D]")
        if len(self._index) != n:
            problems.append("clip ids repeat")
        if not problems and not (np.all(np.isfinite(self.logits)) and np.all(np.isfinite(self.embeddings))):
            problems.append("logits or embeddings hold NaN or inf")
        if problems:
            raise TeacherFileError(f"{where}: invalid clip-level teacher file: " + "; ".join(problems) + ".")

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._index

    def __len__(self) -> int:
        return len(self.clip_ids)

    def take(self, clip_ids) -> tuple[np.ndarray, np.ndarray]:
        """Logits [n, K] and embeddings [n, D] of ``clip_ids`` (each must be present)."""
        idx = [self._index[c] for c in clip_ids]
        return self.logits[idx], self.embeddings[idx]


_FILE_NAME = re.compile(r"^(speech|video|prosodic|linguistic|upstream)(?:-fold(\d+))?\.npz$")

# kind -> fold -> file; fold None means "the same outputs for every fold".
TeacherFiles = dict[str, dict[int | None, Path]]


def find_teacher_files(path: str | Path, kind: str | None = None) -> TeacherFiles:
    """The teacher-output files in a folder, by kind and fold.

    A folder holds ``speech.npz`` / ``video.npz`` (one file for all folds) and/or
    ``speech-fold0.npz``, ``speech-fold1.npz``, ... (one per fold: the speech teacher is
    fitted per fold, on that fold's training speakers only). A single file given with
    ``kind`` counts for every fold.
    """
    path = Path(path)
    if path.is_file():
        if kind is None:
            match = _FILE_NAME.match(path.name)
            if not match:
                raise TeacherFileError(
                    f"{path}: cannot tell which teacher this file holds; name it KIND.npz or KIND-foldK.npz with KIND one of "
                    "speech, video, prosodic, linguistic, upstream"
                )
            kind = match.group(1)
        return {kind: {None: path}}
    if not path.is_dir():
        raise TeacherFileError(f"{path}: teacher outputs not found; pass a folder written by `liser teacher cache` or a .npz file")
    found: TeacherFiles = {}
    for file in sorted(path.glob("*.npz")):
        match = _FILE_NAME.match(file.name)
        if match and (kind is None or match.group(1) == kind):
            fold = None if match.group(2) is None else int(match.group(2))
            found.setdefault(match.group(1), {})[fold] = file
    if not found:
        wanted = f"{kind}.npz or {kind}-foldK.npz" if kind else "speech.npz, video.npz, speech-foldK.npz, prosodic-foldK.npz, linguistic-foldK.npz or upstream.npz"
        raise TeacherFileError(f"{path}: holds no teacher-output file ({wanted}); see liser/targets.py for the format")
    return found
