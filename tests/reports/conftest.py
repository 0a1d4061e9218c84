"""A tracking store with known numbers, written with MlflowClient the way liser.tracking writes studies.

``fake_store`` (built once per session, read-only for the tests) holds:

* ``table2-ravdess``: the five Table 2 configurations and four per-teacher ablations on
  ravdess, 3 folds each, plus runs that must be ignored: a FAILED and a RUNNING trial
  with excellent folds, and under no-dstl a deleted (superseded) fold, a RUNNING fold
  and a FAILED fold with absurd scores;
* ``table2-cremad``: the five configurations on cremad;
* ``fraction-cremad``: no-dstl and vid-sp-dstl at labeled fractions 0.25, 0.5 and 1;
* ``lambda-grid``: vid-sp-dstl on ravdess over λ_sd ∈ {0.5, 1} × λ_vd ∈ {0.5, 1, 5};
* ``search-ravdess``: a search (8 FINISHED trials, 1 KILLED) over λs, loss and confidence;
* ``no-finished``: one FAILED trial only.

``methods_store``, a second small store, holds the other methods' knob grids:

* ``nsl-grid``: cnn6 once and nsl on ravdess over nsl_neighbors ∈ {3, 6} × nsl_alpha ∈ {0.1, 1};
* ``emodistill-tau``: emodistill-no-linguistic on ravdess over tau_prosodic ∈ {0.1, 0.5, 2};
* ``emodistill-mixed``: emodistill on ravdess with α, β and τ_P varied together (5 trials, two in one (α, τ_P) cell);
* ``lambda-pair``: vid-sp-dstl on ravdess at λ_sd ∈ {0.5, 1} (a LiSER grid beside the others).

``store.raw[run_id]`` keeps every finished fold's logged numbers; tests compute their
expectations from these with numpy, never with the code under test.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

FOLDS = (0, 1, 2)
N_TRAIN = {"ravdess": (200, 210, 190), "cremad": (900, 880, 920)}
N_TEST = {"ravdess": (60, 55, 65), "cremad": (300, 310, 290)}
CLASSES = {"ravdess": ["neutral", "happy", "sad"], "cremad": ["angry", "disgust", "fearful", "happy"]}
TABLE2 = ("no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl", "conf-vid-sp-dstl")
ABLATIONS = ("vid-distill-ce", "sp-distill-ce", "vid-two-stage-train", "sp-two-stage-train")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeStore:
    """Writes studies into a sqlite tracking store and remembers what it wrote."""

    # The fixture's facts, for tests to compute expectations from.
    TABLE2 = TABLE2
    ABLATIONS = ABLATIONS
    N_TRAIN = N_TRAIN
    N_TEST = N_TEST
    CLASSES = CLASSES

    uri: str
    artifacts: str
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    experiments: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)  # parent run id -> {"config", "dataset", "study", "params", "folds": [fold dicts]}
    ignored: dict = field(default_factory=dict)  # what must not show up: name -> run id
    trial_numbers: dict = field(default_factory=dict)

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def finished(self, study: str | None = None, config: str | None = None, dataset: str | None = None) -> dict:
        """The FINISHED trials written (parent run id -> raw record), filtered."""
        return {
            rid: r for rid, r in self.raw.items()
            if r["status"] == "FINISHED" and (study is None or r["study"] == study) and (config is None or r["config"] == config)
            and (dataset is None or r["dataset"] == dataset)
        }

    def study(self, name: str, kind: str = "points", description: str = "") -> str:
        tags = {"liser.study": name, "liser.kind": kind, "liser.spec_hash": f"hash-{name}", "mlflow.note.content": description or f"fake {name}"}
        exp = self.client.create_experiment(name, artifact_location=f"{self.artifacts}/{name}", tags=tags)
        self.experiments[name] = exp
        self.trial_numbers[name] = 0
        return exp

    def _tags(self, study: str, dataset: str, config: str) -> dict:
        return {
            "liser.study": study, "liser.dataset": dataset, "liser.config": config, "liser.git_commit": COMMIT, "liser.version": "0.1.0",
            "liser.labeled_manifest": f"manifest-{dataset}", "liser.unlabeled_manifest": "manifest-avclips",
            "liser.teachers": f"speech:0=aa{dataset},video:all=bb",
        }

    def trial(self, study: str, config: str, dataset: str, folds: list[dict], *, knobs: dict | None = None, status: str = "FINISHED",
              confusion: bool = True, point: bool = True) -> str:
        """A parent run with one FINISHED child per fold; ``folds`` are dicts of the fold metrics."""
        from mlflow.entities import Metric, Param

        from liser.configs import make_config

        c = self.client
        exp = self.experiments[study]
        number = self.trial_numbers[study]
        self.trial_numbers[study] += 1
        knobs = dict(knobs or {})
        cfg = make_config(config, **knobs)
        params = {**({"config": config} if point else {}), **knobs, **cfg.model_dump(exclude={"seed"})}
        label = ", ".join(f"{k}={v}" for k, v in knobs.items())
        tags = {**self._tags(study, dataset, config), "liser.role": "trial", "liser.trial": str(number), "liser.trial_key": f"key-{study}-{number}"}
        parent = c.create_run(exp, run_name=f"{number:03d}-{config}" + (f" {label}" if label else ""), tags=tags).info.run_id
        c.log_batch(parent, params=[Param(k, str(v)) for k, v in params.items()])
        for f in folds:
            self.fold(study, parent, config, dataset, f, confusion=confusion, params=cfg.model_dump())
        summary = {}
        for m in ("val_uar", "val_war", "test_uar", "test_war"):
            v = np.array([f[m] for f in folds])
            summary[f"{m}_mean"], summary[f"{m}_std"] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
        summary["n_fold_runs"] = float(len(folds))
        now = int(time.time() * 1000)
        c.log_batch(parent, metrics=[Metric(k, v, now, 0) for k, v in summary.items()])
        if status != "RUNNING":
            c.set_terminated(parent, status)
        self.raw[parent] = {"config": config, "dataset": dataset, "study": study, "trial": number, "knobs": knobs, "params": params, "folds": folds, "status": status}
        return parent

    def fold(self, study: str, parent: str, config: str, dataset: str, f: dict, *, confusion: bool = True, params: dict | None = None,
             status: str = "FINISHED") -> str:
        from mlflow.entities import Metric, Param

        c = self.client
        tags = {**self._tags(study, dataset, config), "mlflow.parentRunId": parent, "liser.role": "fold", "liser.fold": str(f["fold"]), "liser.seed": str(f.get("seed", 0))}
        run = c.create_run(self.experiments[study], run_name=f"fold{f['fold']}", tags=tags).info.run_id
        now = int(time.time() * 1000)
        metrics = {k: f[k] for k in ("val_uar", "val_war", "test_uar", "test_war", "n_train", "n_val", "n_test", "best_epoch")}
        c.log_batch(run, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()], params=[Param(k, str(v)) for k, v in (params or {}).items()])
        if confusion and "confusion" in f:
            classes = CLASSES[dataset]
            cm = np.asarray(f["confusion"])
            c.log_table(run, {"true": [t for t in classes for _ in classes], "predicted": classes * len(classes), "count": cm.ravel().tolist()}, "confusion_matrix.json")
        if status != "RUNNING":
            c.set_terminated(run, status)
        return run

    def folds(self, dataset: str, level: float, *, fraction: float = 1.0, confusion: bool = True) -> list[dict]:
        """Three folds of scores around ``level``, rounded to 3 decimals (so they read like the paper's)."""
        out = []
        k = len(CLASSES[dataset])
        for i in FOLDS:
            uar, war = level + self.rng.uniform(-0.03, 0.03), level + self.rng.uniform(-0.02, 0.04)
            f = {
                "fold": i, "seed": 0,
                "val_uar": round(level + self.rng.uniform(-0.04, 0.04), 3), "val_war": round(level + self.rng.uniform(-0.04, 0.04), 3),
                "test_uar": round(uar, 3), "test_war": round(war, 3),
                "n_train": round(N_TRAIN[dataset][i] * fraction), "n_val": 50, "n_test": N_TEST[dataset][i], "best_epoch": int(self.rng.integers(1, 50)),
            }
            if confusion:
                f["confusion"] = self.rng.integers(0, 20, size=(k, k)).tolist()
            out.append(f)
        return out


def _absurd(fold: int, value: float) -> dict:
    return {"fold": fold, "seed": 0, "val_uar": value, "val_war": value, "test_uar": value, "test_war": value, "n_train": 1, "n_val": 1, "n_test": 1, "best_epoch": 1,
            "confusion": [[99, 0, 0], [0, 99, 0], [0, 0, 99]]}


def build(store: FakeStore) -> FakeStore:
    s = store
    levels = {"no-dstl": 0.52, "vid-dstl": 0.54, "sp-dstl": 0.55, "vid-sp-dstl": 0.56, "conf-vid-sp-dstl": 0.60,
              "vid-distill-ce": 0.52, "sp-distill-ce": 0.54, "vid-two-stage-train": 0.46, "sp-two-stage-train": 0.51}
    s.study("table2-ravdess", description="Table 2 (RAVDESS): five configurations")
    for config in (*TABLE2, *ABLATIONS):
        parent = s.trial("table2-ravdess", config, "ravdess", s.folds("ravdess", levels[config]))
        if config == "no-dstl":
            s.ignored["deleted_fold"] = s.fold("table2-ravdess", parent, config, "ravdess", _absurd(0, 0.01))
            s.client.set_tag(s.ignored["deleted_fold"], "liser.superseded", "true")
            s.client.delete_run(s.ignored["deleted_fold"])
            s.ignored["running_fold"] = s.fold("table2-ravdess", parent, config, "ravdess", _absurd(1, 0.02), status="RUNNING")
            s.ignored["failed_fold"] = s.fold("table2-ravdess", parent, config, "ravdess", _absurd(2, 0.03), status="FAILED")
    s.ignored["failed_trial"] = s.trial("table2-ravdess", "vid-dstl", "ravdess", [_absurd(i, 0.99) for i in FOLDS], status="FAILED")
    s.ignored["running_trial"] = s.trial("table2-ravdess", "sp-dstl", "ravdess", [_absurd(i, 0.98) for i in FOLDS], status="RUNNING")

    s.study("table2-cremad", description="Table 2 (CREMA-D): five configurations")
    for config, level in zip(TABLE2, (0.55, 0.57, 0.575, 0.585, 0.578)):
        s.trial("table2-cremad", config, "cremad", s.folds("cremad", level))

    s.study("fraction-cremad", description="Figure 2 (CREMA-D)")
    for config, top in (("no-dstl", 0.55), ("vid-sp-dstl", 0.585)):
        for fraction in (0.25, 0.5, 1.0):
            s.trial("fraction-cremad", config, "cremad", s.folds("cremad", top - 0.08 * (1 - fraction), fraction=fraction, confusion=False),
                    knobs={"labeled_fraction": fraction}, confusion=False)

    s.study("lambda-grid", description="λ grid (RAVDESS)")
    for sd in (0.5, 1.0):
        for vd in (0.5, 1.0, 5.0):
            level = 0.60 if (sd, vd) == (1.0, 5.0) else 0.53 + 0.005 * sd + 0.002 * vd
            s.trial("lambda-grid", "vid-sp-dstl", "ravdess", s.folds("ravdess", level, confusion=False), knobs={"lambda_sd": sd, "lambda_vd": vd}, confusion=False)

    s.study("search-ravdess", kind="search", description="TPE over the distillation knobs (RAVDESS)")
    for i in range(8):
        knobs = {"lambda_sd": round(float(10 ** s.rng.uniform(-1, 1)), 4), "lambda_vd": round(float(10 ** s.rng.uniform(-1, 1)), 4),
                 "distill_loss": ["mae", "ce"][i % 2], "confidence": bool(i % 3 == 0)}
        level = 0.50 + 0.01 * knobs["lambda_sd"] + (0.03 if knobs["distill_loss"] == "mae" else 0.0)
        s.trial("search-ravdess", "vid-sp-dstl", "ravdess", s.folds("ravdess", level, confusion=False), knobs=knobs, confusion=False, point=False)
    s.ignored["killed_trial"] = s.trial("search-ravdess", "vid-sp-dstl", "ravdess", s.folds("ravdess", 0.9, confusion=False),
                                        knobs={"lambda_sd": 1.0, "lambda_vd": 1.0, "distill_loss": "mae", "confidence": False}, status="KILLED", confusion=False, point=False)

    s.study("no-finished", description="nothing finished")
    s.trial("no-finished", "no-dstl", "ravdess", [_absurd(0, 0.5)], status="FAILED", confusion=False)
    return s


def build_methods(store: FakeStore) -> FakeStore:
    s = store
    s.study("nsl-grid", description="NSL n × α grid (RAVDESS)")
    s.trial("nsl-grid", "cnn6", "ravdess", s.folds("ravdess", 0.50, confusion=False), confusion=False)
    for n in (3, 6):
        for a in (0.1, 1.0):
            level = 0.64 if (n, a) == (6, 0.1) else 0.52 + 0.002 * n + 0.01 * a
            knobs = {"nsl_neighbors": n, "nsl_alpha": a}
            s.trial("nsl-grid", "nsl", "ravdess", s.folds("ravdess", level, confusion=False), knobs=knobs, confusion=False)
    s.study("emodistill-tau", description="EmoDistill τ_P sweep (RAVDESS)")
    for tau in (0.1, 0.5, 2.0):
        level = 0.63 if tau == 0.5 else 0.52
        s.trial("emodistill-tau", "emodistill-no-linguistic", "ravdess", s.folds("ravdess", level, confusion=False),
                knobs={"tau_prosodic": tau}, confusion=False)
    s.study("emodistill-mixed", description="EmoDistill with three knobs varied (RAVDESS)")
    mixed = ((1.0, 10.0, 0.5, 0.55), (1.0, 5.0, 2.0, 0.52), (0.5, 10.0, 4.0, 0.53), (0.5, 5.0, 0.5, 0.54), (1.0, 5.0, 0.5, 0.57))
    for alpha, beta, tau, level in mixed:
        s.trial("emodistill-mixed", "emodistill", "ravdess", s.folds("ravdess", level, confusion=False),
                knobs={"alpha": alpha, "beta": beta, "tau_prosodic": tau}, confusion=False)
    s.study("lambda-pair", description="two λ_sd (RAVDESS)")
    for sd in (0.5, 1.0):
        s.trial("lambda-pair", "vid-sp-dstl", "ravdess", s.folds("ravdess", 0.55, confusion=False), knobs={"lambda_sd": sd},
                confusion=False)
    return s


@contextlib.contextmanager
def unsynced_sqlite():
    """Skip fsync while the fixture writes (~150 runs): 3x faster on a busy disk, and the store is throwaway."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def no_sync(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()

    event.listen(Engine, "connect", no_sync)
    try:
        yield
    finally:
        event.remove(Engine, "connect", no_sync)


def make_store(root, build=build) -> FakeStore:
    with unsynced_sqlite():
        return build(FakeStore(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()))


@pytest.fixture(scope="session")
def fake_store(tmp_path_factory) -> FakeStore:
    return make_store(tmp_path_factory.mktemp("mlflow-reports"))


@pytest.fixture(scope="session")
def methods_store(tmp_path_factory) -> FakeStore:
    return make_store(tmp_path_factory.mktemp("mlflow-methods"), build_methods)


@pytest.fixture(scope="session")
def loaded(fake_store):
    """Every study of the store that has finished trials, loaded once."""
    from liser.reports.runs import load_studies

    return load_studies(fake_store.uri, ["table2-ravdess", "table2-cremad", "fraction-cremad", "lambda-grid", "search-ravdess"])


@pytest.fixture(scope="session")
def table2_data(fake_store):
    """The two Table 2 studies, loaded once (tables and grids both read them)."""
    from liser.reports.runs import load_studies

    return load_studies(fake_store.uri, ["table2-ravdess", "table2-cremad"])


@pytest.fixture
def empty_store(tmp_path) -> FakeStore:
    """An empty store of the same kind, for a test that writes its own runs."""
    return FakeStore(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
