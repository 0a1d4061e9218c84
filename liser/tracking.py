"""MLflow's side of a study: one experiment per study, a parent run per trial, a child run per fold.

Runs are written with ``MlflowClient`` (explicit run ids, no global active run), from the
trial's own process; SQLite is safe for this because each write is one short transaction
(see the 4-parallel-trial test). Runs are found again by tags, never by name:

* parent: ``liser.role=trial`` and ``liser.trial_key`` (hash of the resolved settings,
  folds and seeds), so a resumed or retried trial reopens the same parent;
* child: ``liser.role=fold``, its parent's id, ``liser.fold`` and ``liser.seed``; a
  FINISHED child is reused, never trained again.

:func:`reconcile_runs` runs before a study starts: runs left RUNNING by a killed process
become KILLED, and interrupted fold runs are also deleted (soft: still listed with
``run_view_type=ALL``) because their fold is trained again in a fresh run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

import liser
from liser.errors import TrackingError

TAG = "liser."
CHECKPOINT_ARTIFACT = "checkpoint/student.pt"


def quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def default_store(root: str | Path = ".") -> tuple[str, Path]:
    """The project's embedded store: ``mlflow/mlflow.db`` and ``mlflow/artifacts`` under ``root``."""
    base = Path(root).resolve() / "mlflow"
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}", base / "artifacts"


def resolve_tracking_uri(given: str | None, root: str | Path = ".") -> tuple[str, Path | None]:
    """(tracking URI, artifact root for new experiments or None to let the server decide).

    ``--tracking-uri``, then ``MLFLOW_TRACKING_URI``, then the project's embedded store.
    """
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return default_store(root)
    if uri.startswith("sqlite:///") or "://" not in uri:
        path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else Path(uri)
        try:
            if uri.startswith("sqlite:///"):
                _check_sqlite(path, uri)
                path.parent.mkdir(parents=True, exist_ok=True)
                return f"sqlite:///{path.resolve()}", path.resolve().parent / "artifacts"
            if path.exists() and not path.is_dir():
                raise TrackingError(f"tracking URI {uri}: {path} is a file, not a folder; give a folder, sqlite:///FILE.db or http://HOST:PORT")
            path.mkdir(parents=True, exist_ok=True)  # a plain folder: a file store there
        except OSError as exc:
            raise TrackingError(f"tracking URI {uri}: cannot create {exc.filename or path} ({exc.strerror or exc}); choose a writable place") from exc
        return path.resolve().as_uri(), None
    scheme = uri.split("://", 1)[0].lower()
    if scheme in ("http", "https"):
        check_server(uri)
    elif scheme != "file" and scheme not in REMOTE_SCHEMES:
        raise TrackingError(f"tracking URI {uri}: unknown scheme {scheme}://; use a folder, sqlite:///FILE.db or http://HOST:PORT")
    return uri, None


REMOTE_SCHEMES = ("postgresql", "mysql", "mssql", "databricks", "databricks-uc")


def tracking_timeout() -> float:
    """Seconds to wait for a tracking server to answer (``LISER_TRACKING_TIMEOUT``, default 5)."""
    try:
        return max(0.1, float(os.environ.get("LISER_TRACKING_TIMEOUT", "5")))
    except ValueError:
        raise TrackingError(f"LISER_TRACKING_TIMEOUT={os.environ['LISER_TRACKING_TIMEOUT']!r} is not a number of seconds") from None


def check_server(uri: str) -> None:
    """Fail within :func:`tracking_timeout` when nothing answers at ``uri`` (instead of MLflow's minutes of retries)."""
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    timeout = tracking_timeout()
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # something answered: an MLflow behind a proxy may not serve /health
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"tracking URI {uri}: no server answered GET {url} within {timeout:g} s ({reason}); "
            "start one (`liser ui` or `mlflow server`), fix the address, or set LISER_TRACKING_TIMEOUT"
        ) from None


def _check_sqlite(path: Path, uri: str) -> None:
    if path.is_dir():
        raise TrackingError(f"tracking URI {uri}: {path} is a folder; name a database file, e.g. sqlite:///{path / 'mlflow.db'}")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise TrackingError(f"tracking URI {uri}: {path} is not an SQLite database; point at a new or an MLflow .db file")


def client(uri: str):
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    ensure_schema(uri)
    return MlflowClient(tracking_uri=uri)


_READY: set[str] = set()


def ensure_schema(uri: str) -> None:
    """Create or migrate an SQLite store's tables once, under a file lock beside it.

    MLflow migrates a fresh SQLite database in whichever process opens it first; two
    processes doing so together (a study starting while `liser ui` or another study opens
    the same store) collide in the migrations ("duplicate column", "expected to match one
    row") and one of them dies. Holding ``FILE.db.lock`` while the first query runs makes
    the second process wait and then find the tables ready. Other stores: nothing to do.
    """
    if not uri.startswith("sqlite:///") or uri in _READY:
        return
    from mlflow.tracking import MlflowClient

    path = Path(uri.removeprefix("sqlite:///"))
    try:
        import fcntl

        lock = open(path.with_name(path.name + ".lock"), "a")
    except (ImportError, OSError):  # no POSIX locks (Windows) or a read-only folder: MLflow's own behaviour
        lock = None
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # the store migrates here
    finally:
        if lock is not None:
            lock.close()
    _READY.add(uri)


def git_commit() -> str:
    """The commit of the liser source tree, with ``-dirty`` when it has uncommitted changes."""
    where = Path(liser.__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def setup_experiment(uri: str, artifact_root: Path | None, name: str, tags: dict[str, str]) -> str:
    """The study's experiment id, created once, up front, before any trial starts."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    if exp is None:
        location = (artifact_root / name).as_uri() if artifact_root is not None else None
        exp_id = c.create_experiment(name, artifact_location=location, tags=tags)
    else:
        exp_id = exp.experiment_id
        for k, v in tags.items():
            c.set_experiment_tag(exp_id, k, v)
    return exp_id


def reconcile_runs(uri: str, experiment_id: str) -> dict[str, int]:
    """Mark runs left RUNNING by a dead process KILLED; delete interrupted fold runs."""
    c = client(uri)
    counts = {"trials_killed": 0, "folds_killed": 0}
    for run in c.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=10_000):
        c.set_terminated(run.info.run_id, "KILLED")
        if run.data.tags.get(TAG + "role") == "fold":
            c.set_tag(run.info.run_id, TAG + "interrupted", "true")
            c.delete_run(run.info.run_id)
            counts["folds_killed"] += 1
        else:
            counts["trials_killed"] += 1
    return counts


def metrics(values: dict[str, float], step: int = 0):
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in values.items() if v is not None and np.isfinite(v)]


def _params(values: dict[str, Any]):
    from mlflow.entities import Param

    return [Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v)) for k, v in values.items()]


def _tags(values: dict[str, Any]):
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)) for k, v in values.items()]


class TrialTracker:
    """The runs of one trial: its parent and one child per (fold, seed)."""

    def __init__(self, uri: str, experiment_id: str, key: str, tags: dict[str, str]):
        self.c = client(uri)
        self.experiment_id = experiment_id
        self.key = key
        self.tags = tags  # study, trial number, commit, manifests, teachers, version, config
        self.parent_id: str | None = None

    def open(self, run_name: str, params: dict[str, Any]) -> str:
        """Reopen this trial's parent run if an earlier attempt made one, else create it."""
        found = self.c.search_runs(
            [self.experiment_id], filter_string=f"tags.`{TAG}role` = 'trial' and tags.`{TAG}trial_key` = '{self.key}'", max_results=5
        )
        if found:
            self.parent_id = found[0].info.run_id
            self.c.update_run(self.parent_id, status="RUNNING")
            self.c.log_batch(self.parent_id, tags=_tags({**self.tags, TAG + "role": "trial", TAG + "trial_key": self.key}))
            return self.parent_id
        run = self.c.create_run(self.experiment_id, run_name=run_name, tags={**self.tags, TAG + "role": "trial", TAG + "trial_key": self.key})
        self.parent_id = run.info.run_id
        self.c.log_batch(self.parent_id, params=_params(params))
        return self.parent_id

    def finished_folds(self) -> dict[tuple[int, int], dict[str, float]]:
        """(fold, seed) -> metrics of this trial's FINISHED fold runs, which are never trained again."""
        runs = self.c.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_id}' and tags.`{TAG}role` = 'fold' and attributes.status = 'FINISHED'",
            max_results=10_000,
        )
        done = {}
        for r in runs:
            if "test_uar" in r.data.metrics and "val_uar" in r.data.metrics:
                done[(int(r.data.tags[TAG + "fold"]), int(r.data.tags[TAG + "seed"]))] = dict(r.data.metrics)
        return done

    def start_fold(self, fold: int, seed: int, extra_tags: dict[str, str]) -> str:
        """A fresh child run; earlier unfinished attempts at the same fold are deleted, so none is duplicated."""
        earlier = self.c.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_id}' and tags.`{TAG}fold` = '{fold}' and tags.`{TAG}seed` = '{seed}'",
            max_results=100,
        )
        for run in earlier:
            if run.info.status == "RUNNING":
                self.c.set_terminated(run.info.run_id, "KILLED")
            self.c.set_tag(run.info.run_id, TAG + "superseded", "true")
            self.c.delete_run(run.info.run_id)
        tags = {**self.tags, **extra_tags, "mlflow.parentRunId": self.parent_id, TAG + "role": "fold", TAG + "fold": fold, TAG + "seed": seed}
        run = self.c.create_run(self.experiment_id, run_name=f"fold{fold}" + (f"-seed{seed}" if seed else ""), tags={k: str(v) for k, v in tags.items()})
        return run.info.run_id

    def log_epoch(self, run_id: str, epoch: int, row: dict[str, Any]) -> None:
        """Per-epoch curves; validation ones as ``epoch_val_*`` so the final ``val_uar`` stays the best epoch's."""
        prefix = "distil_" if row.get("stage") == "distil" else ""
        values = {prefix + ("epoch_" + k if k.startswith("val_") else k): v for k, v in row.items() if k not in ("stage", "epoch") and isinstance(v, (int, float))}
        self.c.log_batch(run_id, metrics=metrics(values, step=epoch))

    def finish_fold(self, run_id: str, *, config: dict, fold_record: dict, result: dict, classes: list[str], checkpoint: Path,
                    extra_metrics: dict[str, float] | None = None) -> None:
        """Final metrics (and ``extra_metrics``), the confusion matrix (figure and table), fold file, config and checkpoint."""
        val, test = result["val"], result["test"]
        self.c.log_batch(
            run_id,
            metrics=metrics(
                {
                    "val_uar": val["uar"], "val_war": val["war"], "test_uar": test["uar"], "test_war": test["war"],
                    "best_epoch": result["best_epoch"], "fold_seconds": result["seconds"],
                    **{f"n_{k}": v for k, v in result["counts"].items()},
                    **(extra_metrics or {}),
                }
            ),
            params=_params({k: v for k, v in config.items()}),
        )
        cm = np.asarray(test["confusion"])
        self.c.log_table(run_id, {"true": [t for t in classes for _ in classes], "predicted": classes * len(classes), "count": cm.ravel().tolist()}, "confusion_matrix.json")
        self.c.log_figure(run_id, confusion_figure(cm, classes, f"fold {fold_record['index']}: test UAR {test['uar']:.3f}"), "confusion_matrix.png")
        self.c.log_dict(run_id, fold_record, "fold.json")
        self.c.log_dict(run_id, config, "config.yaml")
        self.c.log_dict(run_id, {k: v for k, v in result.items() if k != "history"}, "result.json")
        self.c.log_artifact(run_id, str(checkpoint), "checkpoint")
        self.c.set_terminated(run_id, "FINISHED")

    def fail_fold(self, run_id: str, error: str) -> None:
        self.c.set_tag(run_id, TAG + "error", error[:5000])
        self.c.set_terminated(run_id, "FAILED")

    def finish(self, summary: dict[str, float], status: str = "FINISHED", error: str | None = None) -> None:
        self.c.log_batch(self.parent_id, metrics=metrics(summary))
        if error:
            self.c.set_tag(self.parent_id, TAG + "error", error[:5000])
        self.c.set_terminated(self.parent_id, status)


def confusion_figure(cm: np.ndarray, classes: list[str], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(classes), 0.8 + 0.6 * len(classes)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(int(v)), ha="center", va="center", color="white" if v > cm.max() / 2 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig

