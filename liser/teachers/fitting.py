"""What every per-fold teacher fit shares: the fold checks, the 80/20 split, threads, the summary file.

The speech, prosodic and linguistic teachers are each fitted once per fold on that fold's
training speakers only. They check the folds the same way before any work, split the
training clips the same way (section 3.2's 80/20), and keep one summary file per teacher
folder, merged across runs, that ``liser teacher ... fit`` prints and the README quotes.
Kept free of heavy imports (transformers, peft) so every teacher module can use it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

import liser
from liser.folds import Fold


from liser.errors import TeacherError  # noqa: E402  (re-exported)
from liser.storage import write_text_atomic  # noqa: E402


def not_cached_message(what: str, backbone: str, err: Exception, offline: str) -> str:
    """Why a hub id failed offline, and the three ways out (copy a cache, a local folder, the offline stand-in)."""
    return (
        f"{what} {backbone!r} is not in the local Hugging Face cache and cannot be downloaded here ({err}). "
        f"On a connected machine run `huggingface-cli download {backbone}` (or `hf download {backbone}`) and copy "
        f"the cache (~/.cache/huggingface) over, or pass a local checkpoint folder as the backbone, or use {offline}."
    )


def check_folds(folds: Sequence[Fold], fold_indices: Sequence[int] | None) -> tuple[dict[int, Fold], list[int]]:
    """The folds by index and the ones wanted, after refusing unknown folds and any fold whose
    training speakers are also its validation or test speakers (checked before any fitting)."""
    by_index = {f.index: f for f in folds}
    wanted = list(by_index) if fold_indices is None else list(fold_indices)
    missing = [k for k in wanted if k not in by_index]
    if missing:
        raise TeacherError(f"folds {missing} do not exist; the fold file has folds {sorted(by_index)}")
    for k in wanted:
        fold = by_index[k]
        overlap = sorted(set(fold.train) & (set(fold.val) | set(fold.test)))
        if overlap:
            raise TeacherError(f"leakage: fold {k} lists speakers {overlap} both for training and for validation/testing")
    return by_index, wanted


def split_fit_val(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified (fit, val) indices: ``val_fraction`` of each class held out, at least one
    per class that has two or more clips (section 3.2's 80/20 split)."""
    rng = np.random.default_rng([seed, 80, 20])
    fit, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(max(round(val_fraction * len(idx)), 1), len(idx) - 1) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        fit.extend(idx[n_val:])
    return np.sort(np.asarray(fit, int)), np.sort(np.asarray(val, int))


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, then restore (None: leave as is).

    Tiny models gain nothing from several threads, and on a busy machine waiting for
    them can slow a step tenfold.
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fold_entry(k: int, fold: Fold, record: dict, **extra) -> dict:
    """One fold's line in the summary: its speakers and the teacher's own validation scores."""
    return {
        "fold": k, "train_speakers": record["train_speakers"], "val_speakers": list(fold.val), "test_speakers": list(fold.test),
        "best_epoch": record["best_epoch"], "val_uar": record["val_uar"], "val_war": record["val_war"], **extra,
    }


def read_entries(path: Path, identity: dict) -> dict[int, dict]:
    """The fold entries of an existing summary, or none when it describes other teachers (``identity`` differs)."""
    summary = json.loads(path.read_text()) if path.exists() else {}
    if any(summary.get(key, value) != value for key, value in identity.items()):
        return {}  # teachers of another corpus, backbone or configuration: start afresh
    return {int(e["fold"]): e for e in summary.get("folds", [])}


def write_summary(path: Path, kind: str, corpus, entries: dict[int, dict], **header) -> dict:
    """Write the summary over every fold fitted so far (atomically) and return it."""
    summary = {
        "kind": kind, **header, "classes": list(corpus.classes), "corpus": corpus.name, "manifest_hash": corpus.manifest_hash(),
        "liser_version": liser.__version__, "folds": [entries[k] for k in sorted(entries)],
    }
    write_text_atomic(path, json.dumps(summary, indent=1))
    return summary
