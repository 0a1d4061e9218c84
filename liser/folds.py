"""Speaker-independent 5-fold train / validation / test splits (section 3.6).

Speakers are shuffled with a seed (interleaving genders when known, so each part has
both) and dealt into ``n_folds`` groups. Fold k tests on group k, validates on group
k + 1 and trains on the rest, so no speaker is in two parts of a fold and every
speaker is tested exactly once. Runs read the split from a JSON fold file and record it.

A corpus whose protocol fixes the groups (IEMOCAP: leave one session out) says so
with a ``fold_group`` manifest column; :func:`folds_for` then rotates over those
groups instead of dealing speakers, so its results compare with published ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from liser.constants import N_FOLDS
from liser.errors import DataError, InputNotFound
from liser.storage import write_text_atomic


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def part_of(self, speaker: str) -> str:
        for part in ("train", "val", "test"):
            if speaker in getattr(self, part):
                return part
        raise KeyError(f"speaker {speaker!r} is not in fold {self.index}")


def _speakers(n: int) -> str:
    return f"{n} speaker" if n == 1 else f"{n} speakers"


def make_folds(
    speakers: Sequence[str],
    n_folds: int = N_FOLDS,
    seed: int = 0,
    strata: Mapping[str, str] | None = None,
) -> list[Fold]:
    """Deal speakers into ``n_folds`` groups and build the rotating splits."""
    unique = sorted(set(map(str, speakers)))
    if n_folds < 3:
        raise DataError(f"n_folds must be at least 3 (train, validation and test need a group each), got {n_folds}")
    if len(unique) < n_folds:
        fix = "use fewer folds (at least 3) or more speakers" if len(unique) >= 3 else "a speaker-independent split needs at least 3 speakers; add speakers"
        raise DataError(f"{_speakers(len(unique))} cannot fill {n_folds} speaker-independent folds; {fix}")
    rng = np.random.default_rng(seed)
    by_stratum: dict[str, list[str]] = {}
    for spk in unique:
        by_stratum.setdefault(str(strata.get(spk, "")) if strata else "", []).append(spk)
    order: list[str] = []
    for key in sorted(by_stratum):  # each stratum shuffled, then dealt in turn
        members = by_stratum[key]
        order.extend(members[i] for i in rng.permutation(len(members)))
    groups: list[list[str]] = [[] for _ in range(n_folds)]
    for i, spk in enumerate(order):
        groups[i % n_folds].append(spk)
    folds = []
    for k in range(n_folds):
        val_k = (k + 1) % n_folds
        train = [s for g, grp in enumerate(groups) if g not in (k, val_k) for s in grp]
        folds.append(Fold(k, tuple(sorted(train)), tuple(sorted(groups[val_k])), tuple(sorted(groups[k]))))
    return folds


def make_group_folds(groups: Mapping[str, Sequence[str]]) -> list[Fold]:
    """One fold per group, groups in sorted order: fold k tests group k, validates on k + 1, trains on the rest."""
    names = sorted(groups)
    if len(names) < 3:
        raise DataError(f"{len(names)} fold groups cannot make folds (train, validation and test need a group each)")
    owner: dict[str, str] = {}
    for name in names:
        for spk in map(str, groups[name]):
            if owner.setdefault(spk, name) != name:
                raise DataError(f"speaker {spk!r} is in fold groups {owner[spk]!r} and {name!r}; folds would not be speaker-independent")
    members = [sorted(set(map(str, groups[name]))) for name in names]
    folds = []
    for k in range(len(names)):
        val_k = (k + 1) % len(names)
        train = [s for g, grp in enumerate(members) if g not in (k, val_k) for s in grp]
        folds.append(Fold(k, tuple(sorted(train)), tuple(members[val_k]), tuple(members[k])))
    return folds


def folds_for(manifest: pd.DataFrame, n_folds: int = N_FOLDS, seed: int = 0) -> list[Fold]:
    """The folds a corpus's manifest calls for: its ``fold_group`` rotation, else speakers dealt by :func:`make_folds`."""
    if "fold_group" in manifest:
        groups = {str(g): list(rows["speaker"].unique()) for g, rows in manifest.groupby("fold_group")}
        if len(groups) != n_folds:
            raise DataError(
                f"this corpus fixes its folds by {len(groups)} groups ({', '.join(sorted(groups))}), "
                f"so it cannot make {n_folds} folds; ask for {len(groups)}"
            )
        return make_group_folds(groups)
    strata = dict(zip(manifest["speaker"], manifest["gender"])) if "gender" in manifest else None
    return make_folds(manifest["speaker"].unique(), n_folds, seed, strata)


def save_folds(folds: Sequence[Fold], path: str | Path, **meta) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(meta, n_folds=len(folds), folds=[asdict(f) for f in folds])
    return write_text_atomic(path, json.dumps(payload, indent=1))


def record_folds(folds: Sequence[Fold], path: str | Path, **meta) -> Path:
    """Record the split a run uses in its output folder (``folds.json``), once.

    A folder that already holds the same split keeps its file; one that holds another
    split is refused, so the teachers or students of one folder never mix two splits.
    """
    path = Path(path)
    if path.exists():
        try:
            held = load_folds(path)
        except DataError:
            held = None  # a damaged record: rewrite it from the split in hand
        if held == list(folds):
            return path
        if held is not None:
            raise DataError(
                f"{path} records another fold split than this run's; use a new --out, or pass --fold-file {path} to keep that split"
            )
    return save_folds(folds, path, **meta)


def resolve_folds(manifest: pd.DataFrame, fold_file: str | Path | None = None, seed: int = 0, speakers: Sequence[str] | None = None) -> list[Fold]:
    """The split of a run: the fold file it was given, checked against the corpus's speakers (or
    ``speakers``: those with usable clips), else the seeded default split of the manifest."""
    if fold_file:
        return load_folds(fold_file, manifest["speaker"].unique() if speakers is None else speakers)
    return folds_for(manifest, N_FOLDS, seed)


def parse_fold_list(text: str, n_folds: int) -> list[int]:
    """``--folds``: ``all`` or comma-separated fold numbers, each in 0..n_folds-1."""
    if text == "all":
        return list(range(n_folds))
    try:
        picked = sorted({int(x) for x in text.split(",")})
    except ValueError:
        raise ValueError(f"--folds {text!r}: use 'all' or comma-separated fold numbers such as 0,2") from None
    bad = [k for k in picked if not 0 <= k < n_folds]
    if bad:
        raise ValueError(f"--folds: fold(s) {bad} do not exist; folds are 0..{n_folds - 1}")
    return picked


def load_folds(path: str | Path, speakers: Sequence[str] | None = None) -> list[Fold]:
    """Read a fold file; with ``speakers``, check it covers exactly the corpus's speakers."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        folds = [Fold(f["index"], tuple(f["train"]), tuple(f["val"]), tuple(f["test"])) for f in payload["folds"]]
    except FileNotFoundError:
        raise InputNotFound(f"{path}: fold file not found; create one with `liser data folds`") from None
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a liser fold file ({exc}); create one with `liser data folds`") from exc
    if speakers is not None:
        known = set(map(str, speakers))
        listed = {s for f in folds for s in f.train + f.val + f.test}
        if listed != known:
            missing, extra = sorted(known - listed), sorted(listed - known)
            raise DataError(
                f"{path}: fold file does not match the corpus (speakers missing from it: {missing[:5]}, "
                f"speakers unknown to the corpus: {extra[:5]}); regenerate it with `liser data folds`"
            )
    return folds
