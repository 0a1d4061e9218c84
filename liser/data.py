"""Training data: corpora + cached features + teacher targets, and the mini-batch samplers.

Features live in memory as one log-Mel array per clip; a batch is a stack of 3 s
crops (section 3.3), so an epoch never touches audio files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from liser.constants import CROP_FRAMES, CROP_SECONDS, HOP_SECONDS, TEACHER_SEGMENT_SECONDS
from liser.corpora import Corpus, load_corpus
from liser.evaluate import fit_frames
from liser.features import FeatureSet, featurize
from liser.targets import CLIP_KINDS, ClipOutputs, TeacherFileError, TeacherFiles, TeacherOutputs


@dataclass
class CorpusData:
    """A corpus with the features of its usable clips; ``table`` lists only those clips."""

    corpus: Corpus
    features: FeatureSet

    @property
    def table(self) -> pd.DataFrame:
        m = self.corpus.manifest
        return m[m["clip_id"].isin(self.features.features.keys())].reset_index(drop=True)

    def skipped(self) -> pd.DataFrame:
        """Every unusable file and why: from reading the layout and from decoding."""
        return pd.concat([self.corpus.skipped, self.features.skipped], ignore_index=True)

    def report(self) -> dict:
        return {
            "corpus": self.corpus.name,
            "root": str(self.corpus.root),
            "manifest_hash": self.corpus.manifest_hash(),
            "clips_found": int(len(self.corpus.manifest) + len(self.corpus.skipped)),
            "clips_usable": int(len(self.features)),
            "skipped": self.skipped().to_dict("records"),
            "ignored": list(self.corpus.ignored),
            "fixes": dict(self.features.fixes),
        }


def load_corpus_data(spec: str, cache_dir: str | Path | None = None, progress: bool = True, pool=None) -> CorpusData:
    """A corpus and its features (computed once; ``pool`` decodes missing clips in worker processes)."""
    corpus = load_corpus(spec)
    return CorpusData(corpus, featurize(corpus, cache_dir, progress=progress, pool=pool))


# Teachers whose classes must be the labeled corpus's: they were fitted on it.
SAME_CLASSES = ("speech", "prosodic", "linguistic")


def load_teachers(files: TeacherFiles, labeled_classes: tuple[str, ...]) -> dict[str, dict[int | None, TeacherOutputs | ClipOutputs]]:
    """Load every teacher file; check each holds its kind, and that teachers fitted on the labeled corpus have its classes."""
    teachers: dict[str, dict[int | None, TeacherOutputs | ClipOutputs]] = {}
    for kind, by_fold in files.items():
        for fold, path in by_fold.items():
            out = ClipOutputs.load(path) if kind in CLIP_KINDS else TeacherOutputs.load(path)
            if out.kind != kind:
                raise TeacherFileError(f"{path}: holds {out.kind} teacher outputs but was given as the {kind} teacher")
            if kind in SAME_CLASSES and tuple(out.classes) != tuple(labeled_classes):
                raise TeacherFileError(
                    f"{path}: the {kind} teacher's classes {list(out.classes)} differ from the labeled corpus's "
                    f"{list(labeled_classes)}; fit the {kind} teacher on the same labeled corpus"
                )
            teachers.setdefault(kind, {})[fold] = out
    return teachers


def teachers_for_fold(teachers: dict[str, dict[int | None, TeacherOutputs]], fold) -> dict[str, TeacherOutputs]:
    """Each kind's outputs for ``fold``, refusing a teacher that saw the fold's validation or test speakers."""
    picked = {}
    for kind, by_fold in teachers.items():
        out = by_fold.get(fold.index, by_fold.get(None))
        if out is None:
            raise TeacherFileError(f"no {kind} teacher outputs for fold {fold.index}; fit and cache the {kind} teacher for that fold")
        seen = set(out.meta.get("train_speakers", ())) & (set(fold.val) | set(fold.test))
        if seen:
            raise TeacherFileError(
                f"the {kind} teacher outputs used for fold {fold.index} come from a teacher trained on speakers {sorted(seen)}, "
                f"which are validation or test speakers of this fold; use the teacher fitted on fold {fold.index}"
            )
        picked[kind] = out
    return picked


# ----------------------------------------------------------------------- sampling
def stratified_subset(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-stratified ``fraction`` of the clips (at least one per class)."""
    if fraction >= 1:
        return np.arange(len(labels))
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.extend(rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False))
    return np.sort(np.asarray(keep))


def random_crop(feat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random 3 s crop (section 3.3); shorter clips are padded."""
    return fit_frames(feat, int(rng.integers(0, max(feat.shape[1] - CROP_FRAMES, 0) + 1)))


class LabeledBatch(NamedTuple):
    x: np.ndarray  # [B, mels, frames] crops
    y: np.ndarray  # [B] label indices
    ids: list[str]  # the clips' ids: methods look up their teachers' outputs or graph neighbours by them


class LabeledSampler:
    """Shuffled mini-batches of random crops, one pass over the clips per epoch."""

    def __init__(self, feats: list[np.ndarray], labels: np.ndarray, batch_size: int, ids: list[str] | None = None):
        self.feats, self.labels, self.batch_size = feats, np.asarray(labels), batch_size
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(feats))]

    def __len__(self) -> int:
        return -(-len(self.feats) // self.batch_size)

    def epoch(self, rng: np.random.Generator):
        order = rng.permutation(len(self.feats))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            yield LabeledBatch(np.stack([random_crop(self.feats[i], rng) for i in idx]), self.labels[idx], [self.ids[i] for i in idx])


@dataclass
class UnlabeledBatch:
    x: np.ndarray  # [N_u, mels, frames]
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> [N_u, K] (zeros where masked)
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> [N_u] bool


class UnlabeledSampler:
    """Endless shuffled draws of unlabeled crops with their teachers' window targets.

    Crops start on the 0.5 s teacher-segment grid, so a 3 s crop holds exactly six
    teacher segments whose softmaxes are averaged (section 3.4). Clips that none of
    the needed teachers covers are dropped and counted; a missing or face-less target
    masks only that teacher's term.
    """

    def __init__(self, data: CorpusData, teachers: dict[str, TeacherOutputs], batch_size: int):
        self.teachers, self.batch_size = teachers, batch_size
        table = data.table
        covered = np.zeros(len(table), bool)
        self.missing = {}
        for kind, out in teachers.items():
            has = table["clip_id"].map(lambda c, out=out: c in out).to_numpy(bool)
            self.missing[kind] = int((~has).sum())
            covered |= has
        self.dropped = int((~covered).sum())
        keep = table[covered]
        self.ids = keep["clip_id"].tolist()
        self.feats = [data.features.features[c] for c in self.ids]
        if not self.ids:
            raise TeacherFileError(
                f"no unlabeled clip of {data.corpus.root} has teacher outputs; the teacher files were made for other clips"
            )
        # clips a teacher covers but gave no usable segment (e.g. no face anywhere)
        self.no_target = {kind: sum(1 for c in self.ids if c in out and not out.segments(c)[1].any()) for kind, out in teachers.items()}
        self.masked = {kind: 0 for kind in teachers}  # sample draws whose term was masked
        self._order: list[int] = []

    def _crop(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        feat = self.feats[i]
        duration = feat.shape[1] * HOP_SECONDS
        n_starts = int(np.floor((duration - CROP_SECONDS) / TEACHER_SEGMENT_SECONDS + 1e-9)) + 1
        start_s = TEACHER_SEGMENT_SECONDS * int(rng.integers(0, max(n_starts, 1)))
        return fit_frames(feat, round(start_s / HOP_SECONDS)), start_s

    def draw(self, rng: np.random.Generator) -> UnlabeledBatch:
        idx = []
        while len(idx) < self.batch_size:
            if not self._order:
                self._order = list(rng.permutation(len(self.ids)))
            idx.append(self._order.pop())
        crops, starts = zip(*(self._crop(i, rng) for i in idx))
        batch = UnlabeledBatch(np.stack(crops))
        for kind, out in self.teachers.items():
            k = len(out.classes)
            targets = np.zeros((len(idx), k), np.float32)
            mask = np.zeros(len(idx), bool)
            for row, (i, start) in enumerate(zip(idx, starts)):
                cid = self.ids[i]
                t = out.window_target(cid, start, CROP_SECONDS) if cid in out else None
                if t is not None:
                    targets[row], mask[row] = t, True
            self.masked[kind] += int((~mask).sum())
            batch.targets[kind], batch.masks[kind] = targets, mask
        return batch
