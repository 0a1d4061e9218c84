"""The one fit driver every teacher goes through: fold checks, leakage guard, 80/20 split,
best-epoch loop, skip-if-up-to-date, the summary file and progress.

The speech, prosodic and linguistic teachers are each fitted once per fold on that fold's
training speakers only (section 3.2). A teacher module supplies only what is its own, as a
:class:`FoldTeacher`: whether a fold's files are up to date, and how to fit one fold (its
model, its training step and its validation score, run through :func:`best_epoch_loop`).
:func:`fit_folds` does the rest, the same way for every teacher: all fold and leakage checks
before any work, a check of the clips each fit actually used, one log line per fold, and one
summary file per teacher folder, merged across runs, that ``liser teacher ... fit`` prints.
The small DFER (fitted once, on a labeled video corpus) shares the split and the loop.
Kept free of heavy imports (transformers, peft) so every teacher module can use it.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch

import liser
from liser.errors import TeacherError
from liser.folds import Fold
from liser.storage import write_text_atomic


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


def training_clips(corpus, train_speakers: Sequence[str], forbidden_speakers: Sequence[str], what: str, usable=None):
    """(the training speakers, sorted; the manifest rows of their clips) after the leakage checks.

    ``usable`` (a boolean mask over the manifest) drops clips the teacher cannot read, e.g.
    clips without a transcript. Refuses speakers that are forbidden (the fold's validation and
    test speakers) or unknown, and checks the selection itself once more.
    """
    if not corpus.labeled:
        raise TeacherError(f"corpus {corpus.name} at {corpus.root} is unlabeled; a {what} is fitted on labeled clips")
    train = tuple(sorted(set(map(str, train_speakers))))
    forbidden = set(map(str, forbidden_speakers))
    leaked = sorted(set(train) & forbidden)
    if leaked:
        raise TeacherError(f"leakage: speakers {leaked} are in this fold's validation or test part and may not train its teacher")
    speakers = corpus.manifest["speaker"].astype(str)
    unknown = sorted(set(train) - set(speakers))
    if unknown:
        raise TeacherError(f"speakers {unknown[:5]} are not in corpus {corpus.name} at {corpus.root}")
    chosen = speakers.isin(train) if usable is None else speakers.isin(train) & np.asarray(usable, bool)
    table = corpus.manifest[chosen.to_numpy()].reset_index(drop=True)
    if not set(table["speaker"].astype(str)) <= set(train) or set(table["speaker"].astype(str)) & forbidden:
        raise TeacherError("leakage: a clip outside the training speakers was selected")  # guards the selection above
    return train, table


@dataclass
class BestEpoch:
    """What :func:`best_epoch_loop` kept: the history of every epoch run and the best one."""

    history: list[dict]
    epoch: int
    score: tuple[float, ...]
    state: object
    seconds: float = 0.0
    stopped_early: bool = field(default=False)

    @property
    def row(self) -> dict:
        """The history row of the kept epoch."""
        return self.history[self.epoch - 1]


def best_epoch_loop(
    epochs: int,
    train_epoch: Callable[[int], dict],
    validate: Callable[[], tuple[tuple[float, ...], dict]],
    snapshot: Callable[[], object],
    *,
    patience: int = 0,
    bar=None,
    tick: bool = False,
    timed: bool = True,
) -> BestEpoch:
    """Train up to ``epochs`` epochs and keep the one with the best validation score (section 3.2).

    ``train_epoch(epoch)`` runs one epoch and returns its history fields (its mean loss first);
    ``validate()`` returns (score, more history fields), scores comparing as tuples, e.g.
    (UAR, WAR), ties keeping the earlier epoch; ``snapshot()`` copies the state to keep.
    ``patience`` stops after that many epochs without a better score (0: never). ``bar`` (a
    tqdm) gets the loss and score after each epoch, and one tick per epoch with ``tick``.
    """
    history: list[dict] = []
    best: tuple[float, ...] | None = None
    state, best_epoch, stale, stopped = None, 0, 0, False
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        row = {"epoch": epoch, **train_epoch(epoch)}
        score, fields = validate()
        row.update(fields)
        if timed:
            row["seconds"] = round(time.perf_counter() - t0, 2)
        history.append(row)
        if bar is not None:
            loss = next((v for k, v in row.items() if k != "epoch"), float("nan"))
            bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}", val_uar=f"{score[0]:.3f}")
            if tick:
                bar.update(1)
        if best is None or score > best:
            best, best_epoch, stale, state = score, epoch, 0, snapshot()
        else:
            stale += 1
            if patience and stale >= patience:
                stopped = epoch < epochs
                break
    if bar is not None:
        bar.close()
    if best is None:
        raise TeacherError("a teacher fit needs at least one epoch")
    return BestEpoch(history, best_epoch, best, state, round(time.perf_counter() - started, 2), stopped)


class FoldTeacher(Protocol):
    """What a per-fold teacher supplies to :func:`fit_folds`; everything else is shared.

    ``fit`` returns the fold's record: at least ``train_speakers``, ``fit_clips``,
    ``val_clips``, ``best_epoch``, ``val_uar``, ``val_war`` (and ``fit_seconds``).
    """

    kind: str  # "speech", "prosodic", "linguistic": the summary's kind and the log lines' name
    summary_file: str  # the summary's name in the output folder
    identity: dict  # what a summary's header must hold for its fold entries to be kept
    header: dict  # the summary's other header fields

    def up_to_date(self, k: int, fold: Fold, train: list[str]) -> dict | None:
        """The fold's record when its files exist and were made with these settings, else None."""

    def fit(self, k: int, fold: Fold, train: list[str], held_out: list[str]) -> dict:
        """Fit fold ``k``'s teacher on ``train`` (never on ``held_out``), save it, return its record."""

    def entry(self, k: int, record: dict) -> dict:
        """The teacher's own fields of the fold's summary line."""


def fit_folds(
    teacher: FoldTeacher, corpus, folds: Sequence[Fold], fold_indices: Sequence[int] | None, out_dir: str | Path, *, log=print
) -> dict:
    """One teacher per fold, each fitted on ``fold.train`` only; writes and returns the summary.

    Every fold is checked before any fitting; a fold whose files are up to date is skipped;
    the clips each fit used are checked against the fold's held-out speakers.

    Raises:
        TeacherError: a fold index that does not exist, a fold whose training speakers overlap
            its validation or test speakers, or a fit that used a held-out speaker's clip.
    """
    by_index, wanted = check_folds(folds, fold_indices)
    summary_path = Path(out_dir) / teacher.summary_file
    entries = read_entries(summary_path, {"manifest_hash": corpus.manifest_hash(), **teacher.identity})
    speaker_of = dict(zip(corpus.manifest["clip_id"].astype(str), corpus.manifest["speaker"].astype(str)))
    for k in wanted:
        fold = by_index[k]
        held_out = sorted(set(map(str, fold.val)) | set(map(str, fold.test)))
        train = sorted(set(map(str, fold.train)))
        record = teacher.up_to_date(k, fold, train)
        if record is not None:
            log(f"{teacher.kind} teacher fold {k}: up to date in {Path(out_dir)} (val UAR {record['val_uar']:.3f}), skipped")
        else:
            record = teacher.fit(k, fold, train, held_out)
            used = {speaker_of[str(c)] for c in [*record["fit_clips"], *record["val_clips"]]}
            if used & set(held_out) or not used <= set(train):  # belt and braces: what was actually used
                raise TeacherError(f"leakage: fold {k}'s {teacher.kind} teacher used clips of speakers {sorted(used - set(train))}")
            log(
                f"{teacher.kind} teacher fold {k}: val UAR {record['val_uar']:.3f}, WAR {record['val_war']:.3f} "
                f"(epoch {record['best_epoch']}, {record.get('fit_seconds', 0):.0f} s)"
            )
        entries[k] = fold_entry(k, fold, record, **teacher.entry(k, record))
    return write_summary(summary_path, teacher.kind, corpus, entries, **teacher.identity, **teacher.header)
