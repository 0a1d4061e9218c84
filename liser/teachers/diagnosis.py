"""Are the teachers any good on the unlabeled clips they teach on? (``liser teacher report``)

A teacher's validation score is measured on its own labeled split; what decides whether
distilling from it can help (eq. 4/5) is what it says about the *unlabeled* clips. This
module reads a folder of teacher-output files and measures, per file: clip coverage,
the share of valid segments, the predicted-class distribution next to the labeled
corpus's prior, the confidence (the max probability eq. 5 weights by) and entropy, the
teacher's own validation UAR/WAR and, where a hidden truth exists (the synthetic
corpus), its accuracy there. Across files: speech-video agreement on the classes they
share (:data:`~liser.constants.FERV39K_OF_EMOTION`) and agreement between the per-fold
speech teachers, both as Cohen's kappa. Teachers that look collapsed get warnings.

Every score is per clip: the mean of the clip's valid segment softmaxes (how the
trainer averages a crop's segments), then its argmax and its max.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from liser.constants import FERV39K_OF_EMOTION
from liser.targets import TeacherFiles, TeacherOutputs, find_teacher_files
from liser.teachers.truth import TRUTH_COLUMN, clip_probs, score_calls
from liser.errors import InputNotFound

# Warning thresholds (issue 12): a teacher "collapses" when one class takes more than
# COLLAPSE_SHARE of the clips although no class exceeds PRIOR_MAX_SHARE of the labeled
# corpus; when its mean confidence is below CONFIDENCE_FACTOR x uniform (1/K); or when
# speech and video agree no better than chance (kappa below KAPPA_CHANCE).
COLLAPSE_SHARE = 0.5
PRIOR_MAX_SHARE = 0.3
CONFIDENCE_FACTOR = 1.5
KAPPA_CHANCE = 0.05
CONFIDENCE_BINS = 10


def cohen_kappa(a: np.ndarray, b: np.ndarray, k: int) -> tuple[float, float, float]:
    """(kappa, observed agreement, chance agreement) of two label vectors over ``k`` classes."""
    if len(a) == 0:
        return float("nan"), float("nan"), float("nan")
    observed = float(np.mean(a == b))
    chance = float(np.sum(np.bincount(a, minlength=k) * np.bincount(b, minlength=k)) / len(a) ** 2)
    kappa = (observed - chance) / (1 - chance) if chance < 1 else float("nan")
    return float(kappa), observed, chance


@dataclass
class TeacherStats:
    """What one teacher-output file says about the unlabeled clips."""

    file: str
    kind: str
    name: str
    fold: int | None
    classes: tuple[str, ...]
    clips: int  # clips in the file
    covered: int  # clips with at least one valid segment
    corpus_clips: int | None  # clips in the unlabeled corpus, when known
    valid_share: float  # valid segments / segments
    shares: dict[str, float]  # predicted-class distribution over covered clips
    calls: dict[str, int] = field(repr=False)  # per covered clip: the class index it calls
    confidence: np.ndarray = field(repr=False)  # per covered clip: max of the mean softmax
    mean_entropy: float = float("nan")  # nats
    val_uar: float | None = None
    val_war: float | None = None
    truth: dict = field(default_factory=dict)  # accuracy, uar, confusion against the hidden truth
    warnings: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.covered / self.corpus_clips if self.corpus_clips else (self.covered / self.clips if self.clips else 0.0)

    @property
    def mean_confidence(self) -> float:
        return float(self.confidence.mean()) if len(self.confidence) else float("nan")

    @property
    def top_class(self) -> tuple[str, float]:
        return max(self.shares.items(), key=lambda kv: kv[1]) if self.shares else ("-", 0.0)

    def confidence_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts of clips per confidence bin on [1/K, 1] (a softmax max never falls below 1/K)."""
        edges = np.linspace(1 / len(self.classes), 1.0, CONFIDENCE_BINS + 1)
        return np.histogram(np.clip(self.confidence, edges[0], edges[-1]), bins=edges)[0], edges

    def row(self) -> dict:
        top, share = self.top_class
        return {
            "file": self.file, "kind": self.kind, "teacher": self.name, "fold": self.fold,
            "clips": self.clips, "covered": self.covered, "coverage": round(self.coverage, 4), "valid_segments": round(self.valid_share, 4),
            "top_class": top, "top_share": round(share, 4), "mean_confidence": round(self.mean_confidence, 4),
            "uniform": round(1 / len(self.classes), 4), "mean_entropy": round(self.mean_entropy, 4),
            "val_uar": self.val_uar, "val_war": self.val_war,
            "truth_accuracy": self.truth.get("accuracy"), "truth_uar": self.truth.get("uar"), "truth_clips": self.truth.get("clips"),
            "warnings": len(self.warnings),
        }


@dataclass
class Agreement:
    """Two teachers' calls on the clips both cover, as a count table and Cohen's kappa."""

    a: str
    b: str
    table: pd.DataFrame  # rows: a's calls, columns: b's calls (all their classes)
    kappa: float  # on the clips whose calls both fall in the shared classes
    observed: float
    chance: float
    clips: int  # clips in the kappa


@dataclass
class Diagnosis:
    folder: Path
    teachers: list[TeacherStats]
    speech_video: list[Agreement]
    between_folds: list[Agreement]
    prior: dict[str, float]
    prior_source: str  # the labeled corpus, or "uniform (no labeled corpus given)"
    truth_file: Path | None
    unlabeled: str | None
    agreement_warnings: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [w for t in self.teachers for w in t.warnings] + self.agreement_warnings

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([t.row() for t in self.teachers])

    def agreement_table(self) -> pd.DataFrame:
        rows = [{"pair": kind, "a": g.a, "b": g.b, "clips": g.clips, "kappa": g.kappa, "observed": g.observed, "chance": g.chance}
                for kind, group in (("speech-video", self.speech_video), ("speech folds", self.between_folds)) for g in group]
        return pd.DataFrame(rows, columns=["pair", "a", "b", "clips", "kappa", "observed", "chance"])


def labeled_prior(manifest: pd.DataFrame, classes) -> dict[str, float]:
    """The labeled corpus's class shares (the prior a healthy teacher's calls should not stray far from)."""
    counts = manifest["label"].value_counts()
    total = float(counts.sum()) or 1.0
    return {c: float(counts.get(c, 0)) / total for c in classes}


def _teacher_stats(path: Path, fold: int | None, out: TeacherOutputs, corpus_ids: set[str] | None, truth: pd.DataFrame | None) -> TeacherStats:
    ids, probs = clip_probs(out)
    if corpus_ids is not None:  # clips the corpus no longer holds do not count
        keep = [i for i, c in enumerate(ids) if c in corpus_ids]
        ids, probs = [ids[i] for i in keep], probs[keep]
    calls = probs.argmax(1) if len(ids) else np.zeros(0, int)
    shares = np.bincount(calls, minlength=len(out.classes)) / max(len(calls), 1)
    entropy = -np.sum(np.where(probs > 0, probs * np.log(np.clip(probs, 1e-12, None)), 0.0), axis=1)
    by_clip = dict(zip(ids, map(int, calls)))
    scored = {}
    column = TRUTH_COLUMN.get(out.kind)
    if truth is not None and column in truth:
        scored = score_calls(by_clip, truth.set_index("clip_id")[column].astype(str), out.classes)
    return TeacherStats(
        file=path.name, kind=out.kind, name=str(out.meta.get("teacher") or path.stem), fold=fold, classes=out.classes,
        clips=len(out.clip_ids), covered=len(ids), corpus_clips=len(corpus_ids) if corpus_ids is not None else None,
        valid_share=float(out.valid.mean()) if len(out.valid) else 0.0,
        shares={c: float(s) for c, s in zip(out.classes, shares)}, calls=by_clip, confidence=probs.max(1) if len(ids) else np.zeros(0),
        mean_entropy=float(entropy.mean()) if len(ids) else float("nan"),
        val_uar=out.meta.get("val_uar"), val_war=out.meta.get("val_war"), truth=scored,
    )


def _collapse_warnings(t: TeacherStats, prior: dict[str, float]) -> list[str]:
    found = []
    top, share = t.top_class
    prior_max = max((prior.get(c, 0.0) for c in t.classes), default=0.0)
    if share > COLLAPSE_SHARE and prior_max <= PRIOR_MAX_SHARE:
        found.append(f"{t.file}: calls {share:.0%} of the clips {top!r}, while no class holds more than {prior_max:.0%} of the labeled corpus (collapsed?)")
    uniform = 1 / len(t.classes)
    if t.mean_confidence < CONFIDENCE_FACTOR * uniform:
        found.append(f"{t.file}: mean confidence {t.mean_confidence:.2f} is below {CONFIDENCE_FACTOR:g} x uniform ({CONFIDENCE_FACTOR * uniform:.2f}); its targets are close to flat")
    if t.covered == 0:
        found.append(f"{t.file}: no clip has a valid segment; it teaches nothing")
    return found


def _agreement(a: TeacherStats, b: TeacherStats, to_b: dict[str, str]) -> Agreement:
    """Agreement on the clips both call; kappa in b's class space over the classes a maps onto."""
    pa, pb = a.calls, b.calls
    both = [c for c in pa if c in pb]
    table = pd.crosstab(
        pd.Categorical([a.classes[pa[c]] for c in both], categories=a.classes),
        pd.Categorical([b.classes[pb[c]] for c in both], categories=b.classes), dropna=False,
    )
    table.index.name, table.columns.name = Path(a.file).stem, Path(b.file).stem
    shared = sorted({to_b[c] for c in a.classes if c in to_b and to_b[c] in b.classes}, key=b.classes.index)
    pairs = [(shared.index(to_b[a.classes[pa[c]]]), shared.index(b.classes[pb[c]])) for c in both
             if to_b.get(a.classes[pa[c]]) in shared and b.classes[pb[c]] in shared]
    x, y = (np.asarray(v, int) for v in zip(*pairs)) if pairs else (np.zeros(0, int), np.zeros(0, int))
    kappa, observed, chance = cohen_kappa(x, y, len(shared))
    return Agreement(Path(a.file).stem, Path(b.file).stem, table, kappa, observed, chance, len(pairs))


def speech_video_files(folder: str | Path) -> TeacherFiles:
    """The speech and video teacher-output files of a folder (``speech[-foldK].npz``, ``video.npz``)."""
    files = {k: v for k, v in find_teacher_files(folder).items() if k in ("speech", "video")}
    if not files:
        raise InputNotFound(f"{folder}: holds no speech or video teacher file (speech.npz, speech-foldK.npz, video.npz); write them with `liser teacher cache`")
    return files


def diagnose(
    folder: str | Path,
    *,
    files: TeacherFiles | None = None,
    unlabeled_ids: list[str] | None = None,
    unlabeled: str | None = None,
    prior: dict[str, float] | None = None,
    prior_source: str | None = None,
    truth_file: str | Path | None = None,
) -> Diagnosis:
    """Measure the speech and video teacher-output files of ``folder`` (or ``files``: kind -> fold -> path).

    ``unlabeled_ids`` (the unlabeled corpus's clips) turns coverage into a share of the
    corpus; ``prior`` is the labeled corpus's class shares (default: uniform over each
    teacher's classes); ``truth_file`` is a hidden-truth CSV (the synthetic corpus's).
    """
    folder = Path(folder)
    files = {k: files[k] for k in ("speech", "video") if k in files} if files is not None else speech_video_files(folder)
    truth = pd.read_csv(truth_file) if truth_file else None
    corpus_ids = set(unlabeled_ids) if unlabeled_ids is not None else None
    stats = [_teacher_stats(Path(p), fold, TeacherOutputs.load(p), corpus_ids, truth)
             for kind in files for fold, p in sorted(files[kind].items(), key=lambda kv: -1 if kv[0] is None else kv[0])]
    for t in stats:
        t.warnings = _collapse_warnings(t, prior if prior is not None else {c: 1 / len(t.classes) for c in t.classes})
    speech = [t for t in stats if t.kind == "speech"]
    sv = [_agreement(s, v, FERV39K_OF_EMOTION) for s, v in itertools.product(speech, [t for t in stats if t.kind == "video"])]
    folds = [_agreement(a, b, {c: c for c in a.classes}) for a, b in itertools.combinations(speech, 2) if a.classes == b.classes]
    warnings = [
        f"{g.a} and {g.b} agree on {g.observed:.0%} of {g.clips} clips, chance {g.chance:.0%} (kappa {g.kappa:.2f} < {KAPPA_CHANCE:g}): "
        "no better than chance, so at least one of them says nothing about these clips"
        for g in sv if g.clips and not g.kappa >= KAPPA_CHANCE
    ]
    source = prior_source if prior is not None else "uniform (no labeled corpus given)"
    return Diagnosis(folder, stats, sv, folds, prior or {}, source, Path(truth_file) if truth_file else None, unlabeled, warnings)


def fmt(value, spec: str = ".3f") -> str:
    """A number for the terminal and the page; '-' where there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)
