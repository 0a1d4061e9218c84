"""`liser study`: run a study file (Optuna searches, Ray Tune runs, MLflow logs) and see where it stands."""

from __future__ import annotations

from pathlib import Path

import click

from liser.cli.options import cache_dir_option, fail, quiet_option, tracking_uri_option


@click.group()
def study() -> None:
    """Ablation studies: Optuna searches, Ray Tune runs, MLflow logs every fold."""


@study.command("run")
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@tracking_uri_option()
@click.option("--address", envvar="RAY_ADDRESS", help="join an existing Ray cluster, e.g. ray://head:10001 or 127.0.0.1:6379 (default: a local Ray)")
@click.option("--labeled", help="replace the study's labeled corpus, NAME:PATH")
@click.option("--unlabeled", help="replace the study's unlabeled corpus, NAME:PATH")
@click.option("--teachers", help="replace the study's teacher-output folder")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="a fixed setting for every trial, e.g. --set epochs=5")
@click.option("--name", help="run the file under another study name (a separate MLflow experiment)")
@click.option("--smoke", is_flag=True, help="a fast check of the file: 1 epoch, 1 fold, at most 2 trials (study NAME-smoke)")
@click.option("--retry-failed", is_flag=True, help="run trials that failed in an earlier run again")
@click.option("--cpus", type=int, help="CPUs of the local Ray (default: all)")
@cache_dir_option()
@quiet_option
def study_run(study_file, tracking_uri, address, labeled, unlabeled, teachers, overrides, name, smoke, retry_failed, cpus, cache_dir, quiet) -> None:
    """Run a study file, or resume it: finished trials and folds are never run again.

    \b
    liser study run studies/demo.yaml
    liser study run studies/search-ravdess.yaml --address ray://head:10001 --tracking-uri http://mlflow:5000
    """
    from liser.configs import parse_overrides
    from liser.studies import spec as specs
    from liser.studies.runner import run_study

    try:
        study_ = specs.load_study(study_file, labeled=labeled, unlabeled=unlabeled, teachers=teachers, name=name, fixed=parse_overrides(overrides))
        if smoke:
            study_ = specs.smoke(study_)
        summary = run_study(
            study_, tracking_uri=tracking_uri, address=address, cache_dir=cache_dir, retry_failed=retry_failed,
            cpus=cpus, progress=not quiet, log=click.echo, where=str(study_file),
        )
    except (specs.StudyError, ValueError) as exc:
        fail(exc)
    counts: dict[str, int] = {}
    for t in summary.trials:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    click.echo(f"{summary.study}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" ({summary.seconds:.0f} s)")
    click.echo(f"see it: liser study status {summary.study}   |   liser ui   (MLflow experiment {summary.experiment_id})")


@study.command("status")
@click.argument("name", required=False)
@tracking_uri_option()
def study_status_cmd(name, tracking_uri) -> None:
    """Trials of a study, their state and the best so far (no NAME: list the studies)."""
    from liser.studies.status import format_status, known_studies, study_status

    if not name:
        names = known_studies()
        click.echo("\n".join(names) if names else "no studies yet; run `liser study run studies/demo.yaml`")
        return
    try:
        click.echo(format_status(study_status(name, tracking_uri=tracking_uri)))
    except FileNotFoundError as exc:
        fail(exc)
