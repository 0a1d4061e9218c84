"""Studies as MLflow holds them, loaded into tidy pandas frames: the only input of every report.

The contract is the one :mod:`liser.tracking` writes: one experiment per study,
a parent run per trial (``liser.role=trial``, summary metrics, the TrainConfig as
params) and a child run per fold and seed (``liser.role=fold``, final metrics, a
``confusion_matrix.json`` table). Reports never look at trainer internals, so any
tracking URI (an embedded SQLite store or a server) gives the same pages.

Only FINISHED runs count: FAILED or KILLED trials (and the folds under them), RUNNING
runs, and soft-deleted runs (superseded or interrupted folds) are left out.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from liser import tracking

TAG = tracking.TAG
TRIAL_METRICS = tuple(f"{part}_{m}_{s}" for part in ("val", "test") for m in ("uar", "war") for s in ("mean", "std")) + ("n_fold_runs",)
FOLD_METRICS = (
    "val_uar", "val_war", "test_uar", "test_war", "n_train", "n_val", "n_test", "best_epoch",
    "n_parameters", "n_graph_mean_degree", "n_graph_isolated_fraction",  # the student's size; NSL's graph per fold
    # the student on the unlabeled clips, where a hidden truth exists: g_sup, then its distillation
    # heads (g_sd, g_vd) where trained; top_share: the share of clips given its most called class
    *(f"unlabeled_truth_{h}{m}" for h in ("", "sd_", "vd_") for m in ("accuracy", "uar", "top_share")),
)
# Params that name a trial rather than set one of its knobs.
NAMING_PARAMS = ("config", "name")
CONFUSION_ARTIFACT = "confusion_matrix.json"


from liser.errors import StudyNotFound  # noqa: E402  (re-exported)


@dataclass
class StudyInfo:
    """What a page says about where its numbers came from."""

    name: str
    experiment_id: str
    description: str
    kind: str
    spec_hash: str
    trial_status: dict[str, int]  # every trial run, whatever its status
    datasets: list[str] = field(default_factory=list)
    git_commits: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    labeled_manifests: list[str] = field(default_factory=list)
    unlabeled_manifests: list[str] = field(default_factory=list)
    teachers: list[str] = field(default_factory=list)
    teacher_runs: list[str] = field(default_factory=list)  # the study's FINISHED ``teachers`` runs (diagnosis), newest first


@dataclass
class StudyData:
    """One or several studies: FINISHED trials, their FINISHED folds, and provenance."""

    tracking_uri: str
    studies: list[StudyInfo]
    trials: pd.DataFrame  # one row per FINISHED parent run
    folds: pd.DataFrame  # one row per FINISHED fold run of a FINISHED parent, with its parent's params
    params: list[str]  # the TrainConfig params present as columns of both frames

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.studies]


def _check_store(uri: str) -> None:
    # MlflowClient would silently create an empty database at a mistyped path.
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise StudyNotFound(f"no MLflow store at {uri} ({path} does not exist)")


def known_studies(c) -> list[str]:
    """Names of the studies (experiments tagged ``liser.study``; else every non-default one) in a store."""
    from mlflow.entities import ViewType

    exps, token = [], None
    while True:
        page = c.search_experiments(view_type=ViewType.ACTIVE_ONLY, page_token=token)
        exps.extend(page)
        token = page.token
        if not token:
            break
    tagged = sorted(e.name for e in exps if TAG + "study" in e.tags)
    return tagged or sorted(e.name for e in exps if e.name != "Default")


def _search(c, experiment_id: str, filter_string: str) -> list:
    from mlflow.entities import ViewType

    runs, token = [], None
    while True:
        page = c.search_runs([experiment_id], filter_string=filter_string, run_view_type=ViewType.ACTIVE_ONLY, max_results=10_000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _typed(values: pd.Series) -> pd.Series:
    """Params come back as strings; give a column one type (bool, number, or text; "None" is missing)."""
    raw = values.astype(object)
    raw = raw.where(raw.notna() & (raw != "None"), None)
    present = raw.dropna()
    if present.empty:
        return raw
    if present.isin(["True", "False"]).all():
        return raw.map({"True": True, "False": False}).astype(object).where(raw.notna(), None)
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers[present.index].notna().all():
        return numbers
    return raw


def _dataset(tags: dict) -> str:
    """The labeled corpus's name; runs logged before ``liser.dataset`` existed are grouped by their manifest hash."""
    if tags.get(TAG + "dataset"):
        return tags[TAG + "dataset"]
    manifest = tags.get(TAG + "labeled_manifest")
    return f"labeled {manifest[:8]}" if manifest else "unknown"


def _trial_row(run) -> dict:
    tags, m = run.data.tags, run.data.metrics
    row = {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "study": tags.get(TAG + "study"),
        "dataset": _dataset(tags),
        "config": tags.get(TAG + "config") or run.data.params.get("config") or run.data.params.get("name"),
        "trial": int(tags[TAG + "trial"]) if tags.get(TAG + "trial", "").lstrip("-").isdigit() else None,
        "label": run.info.run_name,  # e.g. "003-vid-sp-dstl lambda_sd=0.5, lambda_vd=1.0"
        "status": run.info.status,
        "start_time": run.info.start_time,
        "git_commit": tags.get(TAG + "git_commit"),
    }
    row.update({k: m.get(k, math.nan) for k in TRIAL_METRICS})
    return row


def _fold_row(run) -> dict:
    tags, m = run.data.tags, run.data.metrics
    row = {
        "run_id": run.info.run_id,
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "fold": int(tags[TAG + "fold"]),
        "seed": int(tags.get(TAG + "seed", 0)),
        "end_time": run.info.end_time,
    }
    row.update({k: m.get(k, math.nan) for k in FOLD_METRICS})
    return row


def _unique(values) -> list[str]:
    return sorted({str(v) for v in values if v not in (None, "") and not (isinstance(v, float) and math.isnan(v))})


def load_study(c, uri: str, name: str) -> tuple[StudyInfo, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One study: (info, FINISHED trials, their params as strings, their FINISHED folds)."""
    exp = c.get_experiment_by_name(name)
    if exp is None or exp.lifecycle_stage == "deleted":
        others = known_studies(c)
        there = f"studies there: {', '.join(others)}" if others else "it holds no studies yet (run `liser study run studies/FILE.yaml`)"
        raise StudyNotFound(f"no study {name!r} in MLflow at {uri}; {there}")
    trial_runs = _search(c, exp.experiment_id, f"tags.`{TAG}role` = 'trial'")
    status = dict(Counter(r.info.status for r in trial_runs))
    finished = [r for r in trial_runs if r.info.status == "FINISHED"]
    if not finished:
        seen = ", ".join(f"{n} {s}" for s, n in sorted(status.items())) or "none"
        raise StudyNotFound(f"study {name!r} in MLflow at {uri} has no FINISHED trial runs yet (trial runs: {seen})")
    trials = pd.DataFrame([_trial_row(r) for r in finished])
    trials["study"] = trials["study"].fillna(name)
    params = pd.DataFrame([{"run_id": r.info.run_id, **r.data.params} for r in finished])
    fold_runs = _search(c, exp.experiment_id, f"tags.`{TAG}role` = 'fold' and attributes.status = 'FINISHED'")
    parents = set(trials["run_id"])  # folds of FAILED, KILLED or RUNNING trials do not count either
    rows = [_fold_row(r) for r in fold_runs if r.data.tags.get("mlflow.parentRunId") in parents]
    folds = pd.DataFrame(rows, columns=["run_id", "parent_run_id", "fold", "seed", "end_time", *FOLD_METRICS])
    tags = [r.data.tags for r in finished]
    info = StudyInfo(
        name=name,
        experiment_id=exp.experiment_id,
        description=exp.tags.get("mlflow.note.content", ""),
        kind=exp.tags.get(TAG + "kind", ""),
        spec_hash=exp.tags.get(TAG + "spec_hash", ""),
        trial_status=status,
        datasets=_unique(trials["dataset"]),
        git_commits=_unique(t.get(TAG + "git_commit") for t in tags),
        versions=_unique(t.get(TAG + "version") for t in tags),
        labeled_manifests=_unique(t.get(TAG + "labeled_manifest") for t in tags),
        unlabeled_manifests=_unique(t.get(TAG + "unlabeled_manifest") for t in tags),
        teachers=_unique(t.get(TAG + "teachers") for t in tags),
        teacher_runs=[r.info.run_id for r in sorted(
            _search(c, exp.experiment_id, f"tags.`{TAG}role` = 'teachers' and attributes.status = 'FINISHED'"), key=lambda r: -r.info.start_time)],
    )
    return info, trials, params, folds


def load_studies(tracking_uri: str, studies: list[str] | str) -> StudyData:
    """Every named study from one tracking store, as :class:`StudyData`.

    Raises :class:`StudyNotFound` naming the URI, the study and the studies that exist.
    """
    names = [studies] if isinstance(studies, str) else list(studies)
    if not names:
        raise ValueError("name at least one study")
    _check_store(tracking_uri)
    c = tracking.client(tracking_uri)
    loaded = [load_study(c, tracking_uri, name) for name in dict.fromkeys(names)]
    infos, trials, params, folds = (list(x) for x in zip(*loaded))
    trials_df = pd.concat(trials, ignore_index=True)
    raw = pd.concat(params, ignore_index=True).set_index("run_id")
    knobs = [k for k in raw.columns if k not in NAMING_PARAMS and k not in trials_df.columns]
    typed = pd.DataFrame({k: _typed(raw[k]) for k in knobs}, index=raw.index)
    trials_df = trials_df.join(typed, on="run_id")
    folds_df = pd.concat([f for f in folds if len(f)] or folds[:1], ignore_index=True)  # empty frames would warn
    # A fold trained twice (should not happen: finished folds are reused) counts once, the latest.
    folds_df = folds_df.sort_values("end_time").drop_duplicates(["parent_run_id", "fold", "seed"], keep="last")
    parent_cols = ["run_id", "experiment_id", "study", "dataset", "config", "trial", *knobs]
    folds_df = folds_df.merge(trials_df[parent_cols].rename(columns={"run_id": "parent_run_id"}), on="parent_run_id", how="inner")
    folds_df = folds_df.drop(columns="end_time").sort_values(["study", "trial", "seed", "fold"], ignore_index=True)
    n = folds_df.groupby("parent_run_id").size()
    trials_df["n_folds"] = trials_df["run_id"].map(n).fillna(0).astype(int)
    trials_df = trials_df.sort_values(["study", "trial"], ignore_index=True)
    return StudyData(tracking_uri, infos, trials_df, folds_df, knobs)


def load_teacher_summary(tracking_uri: str, run_id: str) -> pd.DataFrame:
    """The ``teachers.csv`` a study's ``teachers`` run holds (one row per teacher file); empty if missing."""
    c = tracking.client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="liser-report-") as tmp:
        try:
            return pd.read_csv(c.download_artifacts(run_id, "teachers.csv", tmp))
        except Exception:  # an older or damaged run: the section links to it without a table
            return pd.DataFrame()


def load_confusion(tracking_uri: str, fold_run_ids: list[str]) -> pd.DataFrame:
    """The fold runs' ``confusion_matrix.json`` tables, long: run_id, true, predicted, count.

    Runs without the artifact are skipped; class order is the order the tables list them.
    """
    c = tracking.client(tracking_uri)
    frames = []
    with tempfile.TemporaryDirectory(prefix="liser-report-") as tmp:
        for i, run_id in enumerate(fold_run_ids):
            dst = Path(tmp) / str(i)
            dst.mkdir()
            try:
                path = c.download_artifacts(run_id, CONFUSION_ARTIFACT, str(dst))
            except Exception:  # no table logged for this run (e.g. an older run); the page counts them
                continue
            payload = json.loads(Path(path).read_text())
            table = pd.DataFrame(payload["data"], columns=payload["columns"])
            frames.append(table[["true", "predicted", "count"]].assign(run_id=run_id))
    if not frames:
        return pd.DataFrame(columns=["run_id", "true", "predicted", "count"])
    return pd.concat(frames, ignore_index=True)[["run_id", "true", "predicted", "count"]]
