"""One trial: a resolved configuration trained on every fold and seed, each fold an MLflow child run.

:func:`run_trial` is a plain function of a :class:`TrialContext` (everything loaded once by
the driver and shipped through Ray's object store, so workers need not see the corpus
files) and the trial's parameters. ``report`` is Ray Tune's ``tune.report`` in a study
and any callable in tests. After each fold it reports the running mean of validation
UAR (for fold-level pruning); the last report carries ``complete`` and the objective.
"""

from __future__ import annotations

import dataclasses
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from liser.configs import ConfigError
from liser.data import CorpusData, teachers_for_fold
from liser.folds import Fold
from liser.studies.search import OBJECTIVE, RUNNING_OBJECTIVE
from liser.studies.spec import Study, trial_key
from liser.tracking import TAG, TrialTracker
from liser.targets import TeacherFileError, TeacherOutputs
from liser.train import TrainingDiverged, resolve_device, save_checkpoint, summarize, train_fold

# Errors that a retry cannot fix: recorded as a failed trial at once, not retried by Ray.
SETTLED_ERRORS = (TrainingDiverged, ConfigError, TeacherFileError)


@dataclass
class TrialContext:
    study: Study
    labeled: CorpusData
    unlabeled: CorpusData | None
    teachers: dict[str, dict[int | None, TeacherOutputs]]
    folds: list[Fold]
    tracking_uri: str
    experiment_id: str
    tags: dict[str, str]  # study-wide: commit, manifests, teacher keys, version
    teacher_keys: dict[str, dict[str, str]]  # kind -> fold ("all" or k) -> content hash
    teacher_files: dict[str, dict] = field(default_factory=dict)  # kind -> fold (None or k) -> path
    # The unlabeled clips' hidden true emotion (the synthetic corpus only): each fold's student
    # is scored on it after training, beside its teachers; never a training input.
    unlabeled_truth: Any = None
    unlabeled_video_truth: Any = None  # the same clips' FERV39k class: what g_vd is scored against


def _fold_teacher_tags(ctx: TrialContext, fold: int) -> dict[str, str]:
    tags = {}
    for kind, by_fold in ctx.teacher_keys.items():
        tags[f"{TAG}teacher.{kind}"] = by_fold.get(str(fold), by_fold.get("all", ""))
    return tags


def run_trial(ctx: TrialContext, params: dict[str, Any], trial_number: int, report: Callable[[dict], None], *, progress: bool = False) -> dict:
    """Train (or reuse from MLflow) every fold × seed of one trial, logging as it goes."""
    study = ctx.study
    cfg = study.resolve(params)
    folds = study.fold_indices(len(ctx.folds))
    key = trial_key(cfg, folds, study.seeds)
    tracker = TrialTracker(ctx.tracking_uri, ctx.experiment_id, key, {**ctx.tags, TAG + "trial": str(trial_number), TAG + "config": cfg.name})
    label = ", ".join(f"{k}={v}" for k, v in params.items() if k != "config")
    parent = tracker.open(f"{trial_number:03d}-{cfg.name}" + (f" {label}" if label else ""), {**params, **cfg.model_dump(exclude={"seed"})})
    done = tracker.finished_folds()
    device = resolve_device(study.device)
    results: list[dict] = []
    base = {"parent_run_id": parent, "trial_key": key}
    try:
        for seed in study.seeds:
            seeded = cfg.model_copy(update={"seed": seed})
            for k in folds:
                if (k, seed) in done:
                    m = done[(k, seed)]
                    results.append({"fold": k, "seed": seed, "val": {"uar": m["val_uar"], "war": m["val_war"]}, "test": {"uar": m["test_uar"], "war": m["test_war"]}, "reused": True})
                else:
                    results.append(_train_one(ctx, tracker, seeded, ctx.folds[k], seed, device, progress))
                running = float(np.mean([r["val"]["uar"] for r in results]))
                report({**base, RUNNING_OBJECTIVE: running, "folds_done": len(results), "fold": k, "seed": seed, "fold_test_uar": results[-1]["test"]["uar"]})
    except SETTLED_ERRORS as exc:
        message = f"{type(exc).__name__}: {exc}"
        tracker.finish(_summary(results), status="FAILED", error=message)
        final = {**base, RUNNING_OBJECTIVE: float("nan"), "folds_done": len(results), "error": message}
        report(final)
        return final
    except BaseException as exc:  # unexpected (or interrupted): record it, let Ray retry or stop
        tracker.finish(_summary(results), status="FAILED" if isinstance(exc, Exception) else "KILLED", error="".join(traceback.format_exception(exc))[-4000:])
        raise
    summary = _summary(results)
    tracker.finish(summary)
    final = {**base, **summary, RUNNING_OBJECTIVE: summary["val_uar_mean"], OBJECTIVE: summary["val_uar_mean"], "folds_done": len(results), "complete": True}
    report(final)
    return final


def _summary(results: list[dict]) -> dict[str, float]:
    if not results:
        return {}
    s = summarize(results)
    return {k: v for k, v in s.items() if k != "n_folds"} | {"n_fold_runs": float(s["n_folds"]), "reused_fold_runs": float(sum(r.get("reused", False) for r in results))}


def _train_one(ctx: TrialContext, tracker: TrialTracker, cfg, fold: Fold, seed: int, device, progress: bool) -> dict:
    run_id = tracker.start_fold(fold.index, seed, _fold_teacher_tags(ctx, fold.index))
    try:
        fold_teachers = teachers_for_fold({k: ctx.teachers[k] for k in cfg.teacher_kinds if k in ctx.teachers}, fold)
        result = train_fold(
            cfg, ctx.labeled, fold, ctx.unlabeled if cfg.uses_unlabeled else None, fold_teachers,
            device=device, progress=progress, on_epoch=lambda _f, epoch, row: tracker.log_epoch(run_id, epoch, row),
        )
        extra = _truth_metrics(ctx, result, fold_teachers, device)
        with tempfile.TemporaryDirectory(prefix="liser-trial-") as tmp:
            ckpt = save_checkpoint(Path(tmp) / "student.pt", result, cfg, ctx.labeled.corpus.classes)
            tracker.finish_fold(
                run_id, config=cfg.model_dump(), fold_record=dataclasses.asdict(fold), result=result.as_dict(),
                classes=list(ctx.labeled.corpus.classes), checkpoint=ckpt, extra_metrics=extra,
            )
    except BaseException as exc:
        tracker.fail_fold(run_id, f"{type(exc).__name__}: {exc}")
        raise
    return {**result.as_dict(), "seed": seed}


def _truth_metrics(ctx: TrialContext, result, fold_teachers: dict[str, TeacherOutputs], device) -> dict[str, float]:
    """The fold's student on the unlabeled clips against their hidden truth, where one exists:
    is it right where its teachers are asked to teach? (the dashboard's Teachers section).

    g_sup always (``unlabeled_truth_*``); the distillation heads only where this configuration
    trained them (λ^sd > 0: g_sd, ``unlabeled_truth_sd_*``; λ^vd > 0: g_vd, ``unlabeled_truth_vd_*``),
    since an untrained head's score says nothing.
    """
    if ctx.unlabeled_truth is None or ctx.unlabeled is None:
        return {}
    from liser.teachers.truth import student_head_scores

    classes = ctx.labeled.corpus.classes
    truths = {"sup": (ctx.unlabeled_truth, classes)}
    if "speech" in fold_teachers:  # the teachers this configuration reads: speech iff λ^sd > 0
        truths["sd"] = (ctx.unlabeled_truth, classes)
    if "video" in fold_teachers and ctx.unlabeled_video_truth is not None:
        truths["vd"] = (ctx.unlabeled_video_truth, fold_teachers["video"].classes)
    scores = student_head_scores(result.student(), ctx.unlabeled.features.features, truths, device)
    out = {}
    for head, s in scores.items():
        prefix = "unlabeled_truth_" if head == "sup" else f"unlabeled_truth_{head}_"
        out |= {prefix + "accuracy": s["accuracy"], prefix + "uar": s["uar"], prefix + "top_share": s["top_class_share"]}
    return out
