"""Optuna's side of a study: the persistent study, which trials are still owed, and the
Ray Tune searcher that asks Optuna for them.

The Optuna study (journal file, safe with concurrent writers, unlike SQLite) is the
record of what was tried. Points studies (configurations × grid) enqueue each point
once, so a point is exactly one trial; Optuna's ``GridSampler`` is not used because
it calls ``Study.stop`` after the last point, which is an error outside
``Study.optimize``. Search studies sample with a seeded TPE (or random) sampler.

Resuming after a kill: trials left RUNNING by a dead process are marked FAIL with
``interrupted=True`` and their parameters enqueued again, so they are re-run (their
finished folds come back from MLflow) and never counted twice against the budget.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from liser.studies.spec import Study

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

OBJECTIVE = "val_uar"  # mean validation UAR over folds and seeds; test metrics are never optimised
RUNNING_OBJECTIVE = "val_uar_running"  # reported after every fold: the running mean, for pruning


def storage(state_dir: Path) -> optuna.storages.BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    state_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(state_dir / "optuna.journal")))


def open_study(study: Study, state_dir: Path) -> optuna.Study:
    if study.search is not None and study.search.sampler == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=study.search.seed)
    else:
        seed = study.search.seed if study.search is not None else 0
        sampler = optuna.samplers.TPESampler(seed=seed)
    return optuna.create_study(study_name=study.name, storage=storage(state_dir), direction="maximize", sampler=sampler, load_if_exists=True)


def distributions(study: Study) -> dict[str, BaseDistribution]:
    """Optuna distributions of a trial's parameters (categoricals over a points study's values)."""
    if study.search is not None:
        out: dict[str, BaseDistribution] = {}
        for name, d in study.search.space.items():
            if d.choices is not None:
                out[name] = CategoricalDistribution(d.choices)
            elif d.int:
                out[name] = IntDistribution(int(d.low), int(d.high), log=d.log)
            else:
                out[name] = FloatDistribution(d.low, d.high, log=d.log)
        return out
    values: dict[str, list[Any]] = {}
    for point in study.points():
        for k, v in point.items():
            if v not in values.setdefault(k, []):
                values[k].append(v)
    return {k: CategoricalDistribution(v) for k, v in values.items()}


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


@dataclass
class Plan:
    """What a run of the study owes: trials to launch now, and what the record already holds."""

    to_run: int
    finished: int
    failed: int
    interrupted: int
    queued: int


def reconcile(ostudy: optuna.Study, study: Study, *, retry_failed: bool = False) -> Plan:
    """Make the Optuna record consistent after any earlier run, and count the trials still owed."""
    trials = ostudy.get_trials(deepcopy=False)
    queued = {_key(t.params or t.system_attrs.get("fixed_params", {})) for t in trials if t.state == TrialState.WAITING}
    interrupted = 0
    for t in trials:
        if t.state == TrialState.RUNNING:  # its process is gone: this run holds the study lock
            ostudy._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            ostudy._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            if _key(t.params) not in queued:
                ostudy.enqueue_trial(t.params, user_attrs={"resumes_trial": t.number}, skip_if_exists=False)
                queued.add(_key(t.params))
            interrupted += 1
    trials = ostudy.get_trials(deepcopy=False)
    real_fail = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")]
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if retry_failed:
        for t in real_fail:
            if _key(t.params) not in queued and _key(t.params) not in {_key(d.params) for d in done}:
                ostudy.enqueue_trial(t.params, user_attrs={"retries_trial": t.number})
                queued.add(_key(t.params))
        real_fail_count = 0
    else:
        real_fail_count = len(real_fail)
    if study.search is None:
        settled = {_key(t.params) for t in done} | ({_key(t.params) for t in real_fail} if not retry_failed else set())
        for point in study.points():
            k = _key(point)
            if k not in settled and k not in queued:
                ostudy.enqueue_trial(point)
                queued.add(k)
        waiting = sum(t.state == TrialState.WAITING for t in ostudy.get_trials(deepcopy=False))
        to_run = waiting
    else:
        waiting = sum(t.state == TrialState.WAITING for t in ostudy.get_trials(deepcopy=False))
        to_run = max(study.search.trials - len(done) - real_fail_count, 0)
    return Plan(to_run=to_run, finished=len(done), failed=real_fail_count, interrupted=interrupted, queued=waiting)


# ---------------------------------------------------------------------- Ray Tune searcher
def make_searcher(ostudy: optuna.Study, study: Study):
    """A Ray Tune searcher over Optuna's ask/tell interface.

    Tune's own ``OptunaSearch`` is not used because it needs the objective in every
    intermediate result and tells a stopped trial its last running mean as COMPLETE;
    here a trial is COMPLETE only when all its folds finished, PRUNED when a scheduler
    stopped it, FAIL when it raised.
    """
    from ray.tune.search import Searcher

    class OptunaAskTell(Searcher):
        def __init__(self) -> None:
            super().__init__(metric=RUNNING_OBJECTIVE, mode="max")
            self.dists = distributions(study)
            self.live: dict[str, optuna.Trial] = {}

        def save(self, checkpoint_path: str) -> None:  # the Optuna journal is the saved state
            pass

        def restore(self, checkpoint_path: str) -> None:
            pass

        def suggest(self, trial_id: str) -> dict | None:
            if study.search is not None:
                trial = ostudy.ask(self.dists)
            else:  # an enqueued point: only its own knobs (a baseline skips the grid knobs of another method)
                trial = ostudy.ask()
                frozen = next(t for t in ostudy.get_trials(deepcopy=False) if t.number == trial.number)
                for name in frozen.system_attrs.get("fixed_params", {}):
                    trial.suggest_categorical(name, self.dists[name].choices)  # returns the enqueued value
            self.live[trial_id] = trial
            return {"params": dict(trial.params), "trial_number": trial.number}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            trial = self.live.get(trial_id)
            if trial is not None and "fold" in result and not result.get("complete"):  # one value per fold
                trial.report(result[RUNNING_OBJECTIVE], int(result["folds_done"]))
                for key in ("parent_run_id", "trial_key"):
                    if key in result:
                        trial.set_user_attr(key, result[key])

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            trial = self.live.pop(trial_id, None)
            if trial is None:
                return
            result = result or {}
            if result.get("error"):
                trial.set_user_attr("error", str(result["error"])[:2000])
            if not error and not result.get("error") and result.get("complete"):
                ostudy.tell(trial, result[OBJECTIVE])
            elif error or result.get("error"):
                ostudy.tell(trial, state=TrialState.FAIL)
            else:
                ostudy.tell(trial, state=TrialState.PRUNED)

    return OptunaAskTell()


def trial_table(ostudy: optuna.Study) -> list[dict[str, Any]]:
    """One row per Optuna trial: number, state, value, params and its MLflow parent run."""
    rows = []
    for t in ostudy.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name + (" (interrupted)" if t.user_attrs.get("interrupted") else ""),
                "val_uar": t.value,
                "params": t.params,
                "run_id": t.user_attrs.get("parent_run_id"),
                "error": t.user_attrs.get("error"),
            }
        )
    return rows
