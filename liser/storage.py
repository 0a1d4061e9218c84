"""On-disk bookkeeping shared by the caches: content hashes and atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

from liser.errors import DataError


def default_cache_dir() -> Path:
    """Where features, teacher outputs and backbones are cached: ``$LISER_CACHE`` or ``~/.cache/liser``."""
    path = Path(os.environ.get("LISER_CACHE", Path.home() / ".cache" / "liser"))
    return checked_dir(path, "LISER_CACHE")


def checked_dir(path: Path, what: str = "cache folder") -> Path:
    """``path`` if it is a folder or can become one; else a :class:`DataError` naming it."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise DataError(f"{what} {path}: {p} is a file, not a folder; choose another place (--cache-dir or LISER_CACHE)")
            break
    return path


def sha1_file(path: str | Path) -> str:
    """sha1 of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ContentHashes:
    """sha1 of file contents, remembered by (path, size, mtime) so files are read once."""

    def __init__(self, path: Path):
        self.path = path
        checked_dir(path.parent)
        try:
            self.table: dict[str, str] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.table = {}
        self.dirty = False

    def __call__(self, file: Path) -> str:
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in self.table:
            self.table[key] = sha1_file(file)
            self.dirty = True
        return self.table[key]

    def save(self) -> None:
        if self.dirty:
            write_text_atomic(self.path, json.dumps(self.table))
            self.dirty = False


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write through a temp file and rename, so a crash never leaves half a file.

    The one atomic write of the package: the temp file sits next to ``path`` (same file
    system, so the rename is atomic) and carries the pid and thread, so concurrent writers
    (processes, or studies in threads of one process) never share it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` for text (UTF-8)."""
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json(path: str | Path, payload: dict) -> Path:
    """A JSON record (indented, for people to read), written atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=1))


class SkipClip(Exception):
    """Raised by a per-clip computation for a data problem: the clip is skipped and counted, with ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class StoreRun:
    """What one pass of :meth:`ClipStore.map` did, and the arrays it gathered per clip."""

    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # clip_id -> name -> array
    computed: int = 0  # clips computed in this pass (an entry or a skip)
    cached: int = 0
    corrupt: int = 0  # entries found broken and recomputed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    new_skips: int = 0  # of ``computed``, the clips found unusable in this pass

    def as_dict(self) -> dict:
        return {"computed": self.computed, "cached": self.cached, "corrupt": self.corrupt, "skipped": len(self.skipped)}


class ClipStore:
    """Content-addressed per-clip arrays: the one cache loop behind features and every teacher.

    Layout under ``folder`` (one folder per settings key)::

        <sha1[:2]>/<sha1>.npz    the clip's named arrays
        <sha1[:2]>/<sha1>.json   why the clip is unusable (computed once, remembered)

    Keys are the file's content hash, so a renamed clip is not recomputed; each entry is
    written atomically as soon as it exists, so a killed run resumes where it stopped; an
    entry that fails to read or fails ``check`` is recomputed and counted as corrupt.
    """

    def __init__(self, folder: str | Path, hashes: ContentHashes):
        self.folder, self.hashes = Path(folder), hashes

    def map(
        self,
        rows: Iterable[tuple[str, str | Path]],
        compute: "Callable[[Path], dict[str, np.ndarray]] | ClipTask",
        *,
        check: Callable[[dict[str, np.ndarray]], bool] | None = None,
        total: int | None = None,
        desc: str = "clips",
        progress: bool = True,
        pool=None,
    ) -> StoreRun:
        """Compute every ``(clip_id, path)`` the store lacks; read the rest.

        ``compute`` is ``compute(path) -> arrays`` or a :class:`ClipTask` (a batch of clips at a
        time); either raises :class:`SkipClip` (or any exception with a ``reason``, such as
        AudioError) for a data problem; any other exception is a bug and propagates. ``pool``
        (a :class:`liser.workers.Pool`) runs the missing clips in worker processes; they return
        their results here, and each entry is written as soon as it arrives.
        """
        from tqdm.auto import tqdm

        task = compute if isinstance(compute, ClipTask) else PerClip(compute)
        run, order, missing = StoreRun(), [], []
        bar = tqdm(total=total, desc=desc, unit="clip", disable=not progress, smoothing=0.1)
        try:
            for clip_id, path in rows:  # 1. what the store holds (the driver reads it; workers never write it)
                path = Path(path)
                try:
                    digest = self.hashes(path)
                except OSError as exc:
                    run.skipped.append((str(path), f"unreadable ({exc.strerror or exc})"))
                    bar.update()
                    continue
                npz, err = self.folder / digest[:2] / f"{digest}.npz", self.folder / digest[:2] / f"{digest}.json"
                order.append(clip_id)
                if err.exists():
                    try:
                        run.skipped.append((str(path), json.loads(err.read_text())["reason"]))
                        run.cached += 1
                        order.pop()
                        bar.update()
                        continue
                    except (ValueError, KeyError, OSError):
                        run.corrupt += 1  # a broken skip record: decide again
                entry = _read_npz(npz, check) if npz.exists() else None
                if entry is None:
                    run.corrupt += npz.exists()
                    missing.append((clip_id, path, npz, err))
                else:
                    run.cached += 1
                    run.arrays[clip_id] = entry
                    bar.update()
            self.hashes.save()
            # 2. the clips it lacks, computed in batches (in this process, or by the pool's workers)
            results = (pool.run if pool is not None else run_local)(task, [m[1] for m in missing])
            for i, result in results:
                clip_id, path, npz, err = missing[i]
                run.computed += 1  # work done, whether it yields an entry or a skip
                if isinstance(result, SkipClip):
                    reason = result.reason
                    write_atomic(err, lambda fh: fh.write(json.dumps({"reason": reason}).encode()))
                    run.skipped.append((str(path), reason))
                    run.new_skips += 1
                else:
                    entry = {k: np.asarray(v) for k, v in result.items()}
                    write_atomic(npz, lambda fh: np.savez(fh, **entry))
                    run.arrays[clip_id] = entry
                bar.update()
                bar.set_postfix(ran=run.computed, cached=run.cached)
        finally:
            self.hashes.save()
            bar.close()
        run.arrays = {c: run.arrays[c] for c in order if c in run.arrays}  # the corpus's order, however results arrived
        return run


class ClipTask:
    """A per-clip stage in a form worker processes can run: small and picklable, it loads its
    model on first call (so once per worker) and computes ``batch_size`` clips per call, which
    lets a teacher batch segments across clips. Returns one entry per path: its arrays, or a
    :class:`SkipClip` naming why the clip is unusable."""

    batch_size: int = 1
    auto_min_clips: int = 48  # an auto-sized pool starts Ray only for at least this many clips to compute

    def __call__(self, paths: list[Path]) -> list["dict[str, np.ndarray] | SkipClip"]:
        raise NotImplementedError


class PerClip(ClipTask):
    """A ``compute(path)`` function as a task, one clip per call."""

    def __init__(self, compute: Callable[[Path], dict[str, np.ndarray]], batch_size: int = 1, auto_min_clips: int = 48):
        self.compute, self.batch_size, self.auto_min_clips = compute, batch_size, auto_min_clips

    def __call__(self, paths: list[Path]) -> list["dict[str, np.ndarray] | SkipClip"]:
        return [skip_or(self.compute, p) for p in paths]


def skip_or(compute: Callable, *args):
    """``compute(*args)``, or a :class:`SkipClip` when it raises a data problem (an exception with a ``reason``)."""
    try:
        return compute(*args)
    except Exception as exc:
        if not hasattr(exc, "reason"):
            raise
        return exc if isinstance(exc, SkipClip) else SkipClip(str(exc.reason))


def batches(n: int, size: int) -> list[list[int]]:
    """Indices 0..n-1 in consecutive batches of ``size``."""
    size = max(1, int(size))
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def run_local(task: ClipTask, paths: list[Path]):
    """``task`` over ``paths`` in this process, a batch at a time: yields (index, entry or SkipClip)."""
    for idx in batches(len(paths), task.batch_size):
        yield from zip(idx, task([paths[i] for i in idx]))


def _read_npz(path: Path, check: Callable[[dict[str, np.ndarray]], bool] | None) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            entry = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if check is not None and not check(entry):
        return None
    return entry
