"""``liser study run``: load a study, make its records consistent, and run the owed trials on Ray Tune.

The driver does everything once: loads the corpora (features from the cache), the
teacher outputs and the folds, creates the MLflow experiment, and holds a lock on the
study's state folder so two runs of one study never interleave. Trials run as Ray
Tune trials with the study's resources; each writes its own MLflow runs (see
:mod:`liser.tracking`). Killing the driver at any moment loses at most the
folds in progress: the next run marks them KILLED, re-enqueues their trials and reuses
every finished fold.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from liser import __version__
from liser import tracking
from liser.studies import search
from liser.cluster import check_ray_address, init_ray, join_with_token
from liser.studies.spec import Study, StudyError
from liser.studies.trial import TrialContext, run_trial

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no per-trial tables, liser prints its own lines


def state_dir_for(name: str, root: str | Path = ".") -> Path:
    """Where a study's Optuna journal, lock and Ray files live: ``mlflow/studies/NAME``."""
    return Path(root).resolve() / "mlflow" / "studies" / name


@contextmanager
def study_lock(state_dir: Path, name: str) -> Iterator[None]:
    """An exclusive lock on the study; the OS drops it when the holder dies, even by SIGKILL."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise StudyError(f"study {name} is already running ({holder}); wait for it, or stop it and run the same command to resume") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_running(state_dir: Path) -> str | None:
    """The lock holder's description if the study is running now, else None."""
    path = state_dir / "lock"
    if not path.exists():
        return None
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            return fh.read().strip() or "running"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


# ------------------------------------------------------------------------- loading
def prepare(study: Study, *, cache_dir: str | Path | None = None, progress: bool = True, where: str = "study") -> TrialContext:
    """Load corpora, teachers and folds once; fail here, with the field to fix, not in a trial."""
    from liser.data import load_corpus_data, load_teachers
    from liser.folds import folds_for, load_folds
    from liser.targets import TeacherFileError, content_hash, find_teacher_files

    configs = [study.resolve(p) for p in (study.points() if study.search is None else _search_corners(study))]
    kinds = sorted({k for c in configs for k in c.teacher_kinds})
    needs_unlabeled = any(c.uses_unlabeled for c in configs)
    try:
        labeled = load_corpus_data(study.labeled, cache_dir, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        raise StudyError(f"{where}: labeled: {exc}") from exc
    if not labeled.corpus.labeled:
        raise StudyError(f"{where}: labeled: {study.labeled} has no labels; give it as unlabeled")
    unlabeled = None
    teachers: dict = {}
    teacher_keys: dict[str, dict[str, str]] = {}
    if needs_unlabeled and not study.unlabeled:
        raise StudyError(f"{where}: some trials distil from unlabeled clips (method liser), so the study needs unlabeled: NAME:PATH")
    if kinds and not study.teachers:
        raise StudyError(f"{where}: some trials need {', '.join(kinds)} teacher outputs, so the study needs teachers: FOLDER")
    try:
        if needs_unlabeled:
            unlabeled = load_corpus_data(study.unlabeled, cache_dir, progress=progress)
        files: dict = {}
        for kind, path in study.teacher_paths().items():
            for k, by_fold in find_teacher_files(path, kind or None).items():
                if k in kinds:
                    files[k] = by_fold
        lacking = [k for k in kinds if k not in files]
        if lacking:
            raise TeacherFileError(f"teachers: {study.teachers} holds no {' or '.join(lacking)} teacher file, which some trials need")
        teachers = load_teachers(files, labeled.corpus.classes)
    except (ValueError, FileNotFoundError, TeacherFileError) as exc:
        raise StudyError(f"{where}: {exc}") from exc
    teacher_keys = {kind: {("all" if f is None else str(f)): content_hash(p)[:12] for f, p in by_fold.items()} for kind, by_fold in files.items()}
    speakers = labeled.table["speaker"].unique()
    try:
        if study.folds.file:
            folds = load_folds(study.folds.file, speakers)
        else:
            folds = folds_for(labeled.table, study.folds.n, study.folds.seed)
    except (ValueError, FileNotFoundError) as exc:
        raise StudyError(f"{where}: folds: {exc}") from exc
    bad = [k for k in study.fold_indices(len(folds)) if not 0 <= k < len(folds)]
    if bad:
        raise StudyError(f"{where}: folds.use: fold(s) {bad} do not exist; folds are 0..{len(folds) - 1}")
    tags = {
        tracking.TAG + "study": study.name,
        tracking.TAG + "dataset": labeled.corpus.name,  # reports group trials by data set (Table 2's columns)
        tracking.TAG + "git_commit": tracking.git_commit(),
        tracking.TAG + "version": __version__,
        tracking.TAG + "labeled_manifest": labeled.corpus.manifest_hash(),
        tracking.TAG + "unlabeled_manifest": unlabeled.corpus.manifest_hash() if unlabeled is not None else "",
        tracking.TAG + "teachers": ",".join(f"{k}:{f}={h}" for k, by in teacher_keys.items() for f, h in sorted(by.items())),
    }
    from liser.teachers.truth import load_truths

    truths = load_truths(unlabeled.corpus.root) if unlabeled is not None else {}
    return TrialContext(study, labeled, unlabeled, teachers, folds, "", "", tags, teacher_keys, files,
                        unlabeled_truth=truths.get("speech"), unlabeled_video_truth=truths.get("video"))


def log_teachers_run(ctx: TrialContext, log: Callable[[str], None] = print) -> str | None:
    """The study's speech/video teachers, diagnosed once (``liser teacher report``) into a ``teachers`` run.

    Metrics per teacher file (``{stem}.truth_accuracy``, ``.mean_confidence``, ``.top_share``,
    ``.coverage``, ``.val_uar``), speech-video kappa and the warning count; the page and CSVs
    as artifacts. A run for the same teacher files (their content hashes) is not logged twice.
    """
    import tempfile

    from liser.reports.teachers import report_folder

    files = {k: by_fold for k, by_fold in ctx.teacher_files.items() if k in ("speech", "video")}
    if not files:
        return None
    c = tracking.client(ctx.tracking_uri)
    key = ctx.tags.get(tracking.TAG + "teachers", "")
    done = f"tags.`{tracking.TAG}role` = 'teachers' and tags.`{tracking.TAG}teachers` = '{key}' and attributes.status = 'FINISHED'"
    if c.search_runs([ctx.experiment_id], filter_string=done, max_results=1):
        return None
    folder = Path(next(iter(next(iter(files.values())).values()))).parent
    unlabeled = ctx.unlabeled.corpus.spec if ctx.unlabeled is not None else None
    with tempfile.TemporaryDirectory(prefix="liser-teachers-") as tmp:
        diag, paths = report_folder(folder, unlabeled=unlabeled, labeled=ctx.labeled.corpus.spec, out_dir=tmp, files=files)
        run = c.create_run(ctx.experiment_id, run_name="teachers", tags={**ctx.tags, tracking.TAG + "role": "teachers"})
        metrics = {"n_warnings": len(diag.warnings)}
        for t in diag.teachers:
            stem = Path(t.file).stem
            metrics.update({f"{stem}.truth_accuracy": t.truth.get("accuracy"), f"{stem}.mean_confidence": t.mean_confidence,
                            f"{stem}.top_share": t.top_class[1], f"{stem}.coverage": t.coverage, f"{stem}.val_uar": t.val_uar})
        for g in diag.speech_video:
            metrics[f"{g.a}.video_kappa"] = g.kappa
        c.log_batch(run.info.run_id, metrics=tracking.metrics(metrics))
        for path in paths:
            c.log_artifact(run.info.run_id, str(path))
        c.set_terminated(run.info.run_id, "FINISHED")
    log(f"teacher diagnosis logged as run 'teachers' ({len(diag.warnings)} warning(s))" + "".join(f"\n  WARNING {w}" for w in diag.warnings))
    return run.info.run_id


def _search_corners(study: Study) -> list[dict]:
    """Every combination of the searched dimensions' ends (or choices), the configuration's own
    values first: a search may switch a teacher on anywhere in its space, and a teacher is
    needed when a weight leaves 0 or a switch turns on, which the ends show."""
    ends = {k: (d.choices if d.choices is not None else [d.low, d.high]) for k, d in study.search.space.items()}
    combos = itertools.islice(itertools.product(*ends.values()), 1024)  # a bound for very wide spaces
    return [{}] + [dict(zip(ends, combo)) for combo in combos]


# ------------------------------------------------------------------------- running
def _trainable(config: dict, ctx: TrialContext) -> None:
    """The Ray Tune function trainable: one trial in a worker process."""
    import torch
    from ray import tune

    torch.set_num_threads(max(1, math.floor(ctx.study.resources.cpu)))
    run_trial(ctx, config["params"], config["trial_number"], tune.report)


def _trainable_of(study: Study):
    """A trainable function of the study's own: ``tune.with_parameters`` keys what it ships by
    ``str(trainable)`` and Tune registers trainables by name, so two studies in one process
    (`liser demo` runs two at once) sharing one function would hand each other their contexts."""

    def trainable(config: dict, ctx: TrialContext) -> None:
        _trainable(config, ctx)

    trainable.__name__ = trainable.__qualname__ = f"liser_{study.name}"
    return trainable


@dataclass
class RunSummary:
    study: str
    experiment_id: str
    tracking_uri: str
    plan: search.Plan
    reconciled: dict[str, int]
    trials: list[dict]
    seconds: float

    def best(self) -> dict | None:
        done = [t for t in self.trials if t["state"] == "COMPLETE" and t["val_uar"] is not None]
        return max(done, key=lambda t: t["val_uar"]) if done else None


def run_study(
    study: Study,
    *,
    tracking_uri: str | None = None,
    address: str | None = None,
    root: str | Path = ".",
    cache_dir: str | Path | None = None,
    retry_failed: bool = False,
    cpus: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    where: str = "study",
    on_running: Callable[[], None] | None = None,
) -> RunSummary:
    """Run (or resume) a study to the end of its budget; return what the records hold.

    ``on_running`` is called once its first trials hold their resources (or it has nothing to run, or fails).
    """
    on_running = _once(on_running)
    try:
        return _run_study(study, tracking_uri, address, root, cache_dir, retry_failed, cpus, progress, log, where, on_running)
    finally:
        on_running()


def _once(fn: Callable[[], None] | None) -> Callable[[], None]:
    done = []

    def call() -> None:
        if fn is not None and not done:
            done.append(True)
            fn()

    return call


def _run_study(study, tracking_uri, address, root, cache_dir, retry_failed, cpus, progress, log, where, on_running) -> RunSummary:
    started = time.time()
    if address:
        check_ray_address(address)
        join_with_token()  # before anything imports ray
    state = state_dir_for(study.name, root)
    uri, artifact_root = tracking.resolve_tracking_uri(tracking_uri, root)
    with study_lock(state, study.name):
        ctx = prepare(study, cache_dir=cache_dir, progress=progress, where=where)
        exp_tags = {tracking.TAG + "study": study.name, tracking.TAG + "kind": study.kind, tracking.TAG + "spec_hash": study.spec_hash(), "mlflow.note.content": study.description,
                    "mlflow.experimentKind": "custom_model_development"}  # MLflow 3: the model-training view, not GenAI
        ctx.experiment_id = tracking.setup_experiment(uri, artifact_root, study.name, exp_tags)
        ctx.tracking_uri = uri
        reconciled = tracking.reconcile_runs(uri, ctx.experiment_id)
        log_teachers_run(ctx, log)
        ostudy = search.open_study(study, state)
        plan = search.reconcile(ostudy, study, retry_failed=retry_failed)
        if reconciled["folds_killed"] or plan.interrupted:
            log(f"resuming {study.name}: {plan.interrupted} interrupted trial(s) re-queued, {reconciled['folds_killed']} interrupted fold run(s) marked KILLED")
        log(f"{study.name}: {plan.finished} trial(s) finished earlier, {plan.failed} failed, {plan.to_run} to run; MLflow experiment {ctx.experiment_id} at {uri}")
        if plan.to_run:
            try:
                _tune(study, ctx, ostudy, plan.to_run, state, address, cpus, progress, log, on_running)
            finally:  # interrupted or not: nothing may stay RUNNING
                tracking.reconcile_runs(uri, ctx.experiment_id)
                search.reconcile(ostudy, study)
        trials = search.trial_table(ostudy)
    summary = RunSummary(study.name, ctx.experiment_id, uri, plan, reconciled, trials, time.time() - started)
    best = summary.best()
    if best:
        log(f"best so far: trial {best['trial']} {best['params']} val UAR {best['val_uar']:.3f}")
    for line in dropped_lines(uri, ctx.experiment_id):
        log(line)
    return summary


def run_side_by_side(studies: list[Study], *, where: list[str] | None = None, cpus: int | None = None, log: Callable[[str], None] = print,
                     **kwargs) -> list[RunSummary]:
    """Run several studies at once on one local Ray, each in a thread of its own; their summaries in order.

    One study alone leaves a core idle once it is down to its last trial (5 trials on 2
    slots); side by side, the other studies' trials take it. Each study starts once the one
    before holds its first trials' resources, so put the one with the most (or longest)
    trials first: a Tune run keeps the slots it has while it has trials left, and the later
    studies fill the slots it frees at its end. Same numbers: every fold is seeded and
    trains on its own threads, whatever runs beside it. Each log line is prefixed with its
    study's name. ``kwargs`` go to :func:`run_study`.
    """
    from concurrent.futures import ThreadPoolExecutor

    where = where or [s.name for s in studies]
    started = init_ray(None, cpus)
    pool = ThreadPoolExecutor(len(studies), thread_name_prefix="liser-study")
    try:
        jobs = []
        for st, w in zip(studies, where):
            running = threading.Event()
            jobs.append(pool.submit(run_study, st, cpus=cpus, where=w, on_running=running.set,
                                    log=lambda m, n=st.name: log(m if m.startswith(n + ":") else f"{n}: {m}"), **kwargs))
            while not running.wait(1) and not jobs[-1].done():  # the next study queues behind this one's first trials
                pass
        return [job.result() for job in jobs]
    finally:
        if started:  # on an error or Ctrl-C this ends the other studies' trials too, so their threads return
            import ray

            ray.shutdown()
        pool.shutdown(wait=True, cancel_futures=True)


def dropped_lines(uri: str, experiment_id: str) -> list[str]:
    """What the study's fold runs dropped or masked (their ``n_*`` counts), for the console: one line per count."""
    from liser.train import dropped

    runs = tracking.client(uri).search_runs([experiment_id], filter_string=f"tags.`{tracking.TAG}role` = 'fold'", max_results=10_000)
    totals: dict[str, list[float]] = {}
    for run in runs:  # a fold run logs its counts as metrics n_<count> (tracking.finish_fold)
        counts = {k.removeprefix("n_"): v for k, v in run.data.metrics.items() if k.startswith("n_")}
        for key, value in dropped(counts).items():
            totals.setdefault(key, []).append(value)
    return [f"dropped or masked: {key} in {len(v)} of {len(runs)} fold runs (up to {max(v):.0f} per fold; see the runs' n_{key})" for key, v in sorted(totals.items())]


# Ray Tune's trainable and parameter registries are process-wide and not thread-safe (Ray 2.60:
# "dictionary changed size during iteration" when two threads start a Tuner at once). Studies
# run from several threads of one process (`liser demo` runs two side by side) take turns from
# tune.with_parameters until Tune has registered the experiment and set up its callbacks.
_REGISTERING = threading.Lock()


_WATCHERS: dict[int, Callable[[], None]] = {}  # callback key -> on_running (kept here: an Event does not pickle)


def _registered_callback(n_running: int, on_running: Callable[[], None]):
    from ray.tune import Callback

    key = id(on_running)
    _WATCHERS[key] = on_running

    class Registered(Callback):
        """Ends the registration turn at the controller's setup (after the registration); calls
        ``on_running`` once ``n_running`` trials have started (they hold their resources)."""

        def __init__(self):
            self._held, self._started = True, 0

        def setup(self, **info):
            self.release()

        def on_trial_start(self, iteration, trials, trial, **info):
            self._started += 1
            if self._started >= n_running:
                _notify(key)

        def release(self):
            if self._held:
                self._held = False
                _end_turn()

    return Registered()  # pickled with the Tuner's state: flags and keys only, the lock and the watchers stay in this module


def _notify(key: int) -> None:
    watcher = _WATCHERS.pop(key, None)
    if watcher is not None:
        watcher()


def _end_turn() -> None:
    _REGISTERING.release()


def _tune(study: Study, ctx: TrialContext, ostudy, n_trials: int, state: Path, address: str | None, cpus: int | None, progress: bool, log,
          on_running: Callable[[], None] = lambda: None) -> None:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from liser.studies.progress import TrialProgress

    started_ray = init_ray(address, cpus)
    _REGISTERING.acquire()
    registered = _registered_callback(min(n_trials, study.max_concurrent or n_trials), on_running)
    try:
        resources = {"cpu": study.resources.cpu, "gpu": study.resources.gpu}
        trainable = tune.with_resources(tune.with_parameters(_trainable_of(study), ctx=ctx), resources)
        scheduler = None
        n_folds = len(study.fold_indices(len(ctx.folds))) * len(study.seeds)
        if study.search is not None and study.search.pruning is not None and n_folds > study.search.pruning.after_folds:
            scheduler = ASHAScheduler(
                metric=search.RUNNING_OBJECTIVE, mode="max", time_attr="folds_done", max_t=n_folds,
                grace_period=study.search.pruning.after_folds, reduction_factor=study.search.pruning.reduction_factor,
            )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=search.make_searcher(ostudy, study), scheduler=scheduler, num_samples=n_trials, max_concurrent_trials=study.max_concurrent),
            run_config=tune.RunConfig(
                name=f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(state / "ray"),
                failure_config=tune.FailureConfig(max_failures=study.max_failures),
                callbacks=[registered, TrialProgress(n_trials, progress, log, desc=f"{study.name} trials")],
                verbose=0,
            ),
        )
        tuner.fit()
    finally:
        registered.release()
        _WATCHERS.pop(id(on_running), None)
        if started_ray:
            import ray

            ray.shutdown()
