"""The Optuna record: points enqueued once, interrupted trials re-queued, budgets counted over runs."""

from optuna.trial import TrialState

from liser.studies.search import distributions, open_study, reconcile
from liser.studies.spec import Study


def points_study(**kw):
    return Study.model_validate({"name": "p", "labeled": "ravdess:x", "configurations": ["no-dstl", "vid-dstl"], "grid": {"lr": [1e-4, 1e-3]}, **kw})


def search_study(trials=3):
    space = {"lambda_sd": {"low": 0.1, "high": 10, "log": True}, "distill_loss": {"choices": ["mae", "ce"]}}
    return Study.model_validate({"name": "s", "labeled": "ravdess:x", "configurations": ["vid-sp-dstl"], "search": {"space": space, "trials": trials}})


def test_points_are_enqueued_once_and_asked_in_order(tmp_path):
    study = points_study()
    ostudy = open_study(study, tmp_path)
    plan = reconcile(ostudy, study)
    assert plan.to_run == 4 and plan.finished == 0
    assert reconcile(ostudy, study).to_run == 4  # a second reconcile enqueues nothing more
    asked = [ostudy.ask(distributions(study)) for _ in range(4)]
    assert [t.params for t in asked] == study.points()
    for t in asked[:2]:
        ostudy.tell(t, 0.5)
    # the process "dies" with trials 2 and 3 RUNNING; a new run of the study sees:
    again = open_study(study, tmp_path)
    plan = reconcile(again, study)
    assert (plan.finished, plan.interrupted, plan.to_run) == (2, 2, 2)
    states = [t.state for t in again.trials]
    assert states[:4] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    assert all(t.user_attrs.get("interrupted") for t in again.trials[2:4])
    rerun = [again.ask(distributions(study)) for _ in range(2)]
    assert [t.params for t in rerun] == study.points()[2:]


def test_failed_points_stay_failed_unless_retried(tmp_path):
    study = points_study()
    ostudy = open_study(study, tmp_path)
    reconcile(ostudy, study)
    trials = [ostudy.ask(distributions(study)) for _ in range(4)]
    ostudy.tell(trials[0], state=TrialState.FAIL)
    for t in trials[1:]:
        ostudy.tell(t, 0.4)
    assert reconcile(ostudy, study).to_run == 0
    plan = reconcile(ostudy, study, retry_failed=True)
    assert plan.to_run == 1
    assert ostudy.ask(distributions(study)).params == study.points()[0]


def test_search_budget_counts_over_runs(tmp_path):
    study = search_study(trials=3)
    ostudy = open_study(study, tmp_path)
    assert reconcile(ostudy, study).to_run == 3
    t = ostudy.ask(distributions(study))
    assert 0.1 <= t.params["lambda_sd"] <= 10 and t.params["distill_loss"] in ("mae", "ce")
    ostudy.tell(t, 0.3)
    running = ostudy.ask(distributions(study))  # killed mid-trial
    plan = reconcile(open_study(study, tmp_path), study)
    assert (plan.finished, plan.interrupted, plan.to_run) == (1, 1, 2)
    resumed = open_study(study, tmp_path).ask(distributions(study))
    assert resumed.params == running.params  # the interrupted trial is re-run first


def test_seeded_sampler_repeats(tmp_path):
    a = open_study(search_study(), tmp_path / "a").ask(distributions(search_study()))
    b = open_study(search_study(), tmp_path / "b").ask(distributions(search_study()))
    assert a.params == b.params
