"""``liser study status``: what a study's records hold, read without changing them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from liser.errors import InputNotFound
from liser import tracking
from liser.studies.runner import is_running, state_dir_for


def known_studies(root: str | Path = ".") -> list[str]:
    base = Path(root).resolve() / "mlflow" / "studies"
    return sorted(p.name for p in base.iterdir() if (p / "optuna.journal").exists()) if base.exists() else []


def study_status(name: str, *, root: str | Path = ".", tracking_uri: str | None = None) -> dict:
    """Trials (Optuna's record joined with MLflow's summaries), whether it runs now, and the best."""
    import optuna

    from liser.studies.search import storage, trial_table

    uri, _ = tracking.resolve_tracking_uri(tracking_uri, root)  # checked first: a wrong address fails in seconds
    state = state_dir_for(name, root)
    if not (state / "optuna.journal").exists():
        others = known_studies(root)
        raise InputNotFound(f"no study named {name!r} under {state.parent}" + (f"; known: {others}" if others else "; run `liser study run studies/FILE.yaml` first"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ostudy = optuna.load_study(study_name=name, storage=storage(state))
    rows = trial_table(ostudy)
    c = tracking.client(uri)
    exp = c.get_experiment_by_name(name)
    runs = {}
    if exp is not None:
        for r in c.search_runs([exp.experiment_id], filter_string=f"tags.`{tracking.TAG}role` = 'trial'", max_results=10_000):
            runs[r.info.run_id] = r
    for row in rows:
        run = runs.get(row["run_id"])
        m = run.data.metrics if run is not None else {}
        row["test_uar"] = m.get("test_uar_mean")
        row["test_uar_std"] = m.get("test_uar_std")
        row["fold_runs"] = int(m["n_fold_runs"]) if "n_fold_runs" in m else None
        row["mlflow_status"] = run.info.status if run is not None else None
    table = pd.DataFrame(rows)
    complete = table[table["state"] == "COMPLETE"] if len(table) else table
    best = complete.loc[complete["val_uar"].idxmax()].to_dict() if len(complete) else None
    return {
        "study": name,
        "running": is_running(state),
        "experiment_id": exp.experiment_id if exp is not None else None,
        "tracking_uri": uri,
        "counts": table["state"].value_counts().to_dict() if len(table) else {},
        "trials": table,
        "best": best,
    }


def format_status(status: dict) -> str:
    lines = [f"study {status['study']}: " + ("RUNNING (" + status["running"] + ")" if status["running"] else "not running")]
    lines.append("trials: " + (", ".join(f"{n} {s}" for s, n in status["counts"].items()) or "none yet"))
    table = status["trials"]
    if len(table):
        show = table.assign(
            params=table["params"].map(lambda p: " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())),
            val_uar=table["val_uar"].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.3f}"),
            test_uar=[("" if v is None or pd.isna(v) else f"{v:.3f} ± {s:.3f}") for v, s in zip(table["test_uar"], table["test_uar_std"])],
            fold_runs=table["fold_runs"].map(lambda v: "" if v is None or pd.isna(v) else str(int(v))),
        )[["trial", "state", "params", "val_uar", "test_uar", "fold_runs"]]
        lines.append(show.to_string(index=False))
    if status["best"]:
        b = status["best"]
        lines.append(f"best so far: trial {b['trial']} {b['params']} val UAR {b['val_uar']:.3f}" + (f", test UAR {b['test_uar']:.3f}" if b.get("test_uar") is not None else ""))
    if status["experiment_id"]:
        lines.append(f"MLflow: experiment {status['experiment_id']} at {status['tracking_uri']} (browse with `liser ui`)")
    return "\n".join(lines)
