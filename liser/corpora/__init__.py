"""Corpus adapters: one module per corpus, each with ``prepare(root) -> Corpus``.

A corpus is named on the command line as ``"name:path"`` (``"ravdess:data/ravdess"``).
``name`` is a module in this package, found by import, so adding a corpus means
adding one file here and nothing else. Each module's docstring documents that
corpus's layout, labels and quirks. ``path`` is usually a folder; an adapter that
reads a single file (``table:labels.csv``) checks its own path.

``csv`` is another name for ``table`` (the module is not called ``csv`` so it
never shadows the standard library's).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from liser.corpora.manifest import Corpus
from liser.errors import DataError, InputNotFound

__all__ = ["Corpus", "available_corpora", "load_corpus", "parse_spec"]

_NOT_CORPORA = frozenset({"manifest"})
ALIASES = {"csv": "table"}


def available_corpora() -> list[str]:
    """Names of the corpus modules in this package, sorted (aliases are not listed)."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_") and info.name not in _NOT_CORPORA
    )


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split ``"name:path"`` into a module name and a path (only the first ``:`` splits)."""
    name, sep, path = spec.partition(":")
    name = name.strip().lower().replace("-", "_")
    if not sep or not name or not path.strip():
        raise DataError(f"corpus spec {spec!r} is not 'name:path' (e.g. 'ravdess:data/ravdess')")
    return name, Path(path.strip()).expanduser()


def load_corpus(spec: str) -> Corpus:
    """Read the corpus a ``"name:path"`` spec names, via ``liser.corpora.<name>.prepare``.

    Raises:
        ValueError: the spec is malformed or names no corpus module.
        FileNotFoundError: the path does not exist (adapters say when it must be a folder).
    """
    name, root = parse_spec(spec)
    name = ALIASES.get(name, name)
    available = available_corpora()
    if name not in available:
        known = sorted(available + list(ALIASES))
        raise DataError(f"unknown corpus {name!r} in {spec!r}; available: {', '.join(known)}")
    if not root.exists():
        raise InputNotFound(f"corpus path not found: {root}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.prepare(root)
