"""On-disk bookkeeping shared by the caches: content hashes and atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO, Callable


def default_cache_dir() -> Path:
    """Where features, teacher outputs and backbones are cached: ``$LISER_CACHE`` or ``~/.cache/liser``."""
    return Path(os.environ.get("LISER_CACHE", Path.home() / ".cache" / "liser"))


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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")  # concurrent runs never share a temp file
            tmp.write_text(json.dumps(self.table))
            tmp.replace(self.path)
            self.dirty = False


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temp file and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        write(fh)
    tmp.replace(path)
