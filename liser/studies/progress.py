"""What a user sees while a study runs: a bar over trials and one line per finished trial."""

from __future__ import annotations

from typing import Callable

from ray.tune import Callback
from tqdm.auto import tqdm


def _describe(trial) -> str:
    cfg = trial.config or {}
    params = cfg.get("params", {})
    knobs = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items() if k != "config")
    return f"trial {cfg.get('trial_number', '?')} {params.get('config', '')} {knobs}".rstrip()


class TrialProgress(Callback):
    def __init__(self, total: int, enabled: bool, log: Callable[[str], None], desc: str = "trials"):
        self.bar = tqdm(total=total, desc=desc, unit="trial", disable=not enabled)
        self.log = log
        self.folds = 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.folds += 1
        running = sum(t.status == "RUNNING" for t in trials)
        self.bar.set_postfix(running=running, folds_done=self.folds, refresh=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        self.bar.update(1)
        if r.get("error"):
            self.bar.write(f"{_describe(trial)}: FAILED: {r['error']}")
        elif r.get("complete"):
            self.bar.write(
                f"{_describe(trial)}: val UAR {r['val_uar_mean']:.3f}  test UAR {r['test_uar_mean']:.3f} ± {r['test_uar_std']:.3f}"
                f"  ({int(r['n_fold_runs'])} fold runs, {int(r['reused_fold_runs'])} reused)"
            )
        else:
            self.bar.write(f"{_describe(trial)}: stopped after {r.get('folds_done', 0)} fold(s) (running val UAR {r.get('val_uar_running', float('nan')):.3f})")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.bar.update(1)
        self.bar.write(f"{_describe(trial)}: ERROR after retries: {trial.error_file or ''}")

    def on_experiment_end(self, trials, **info):
        self.bar.close()
