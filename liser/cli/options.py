"""What the command modules share: the one-line failure, and the options several commands take."""

from __future__ import annotations

from pathlib import Path

import click

from liser.errors import LiserError

CORPUS_SPEC = "NAME:PATH, e.g. ravdess:data/synth/ravdess (corpora: ravdess, cremad, iemocap, table (alias csv), avclips)"


def fail(problem: str | Exception) -> None:
    """A user error: a :class:`LiserError` keeps its kind and exit code; anything else exits 1."""
    if isinstance(problem, LiserError):
        raise problem
    raise click.ClickException(str(problem))


def _stack(*options):
    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f

    return apply


def cache_dir_option(help: str = "feature cache (default $LISER_CACHE or ~/.cache/liser)"):
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help=help)


def device_option(default: str = "auto"):
    return click.option("--device", default=default, show_default=True, help="auto, cpu, cuda or cuda:N")


def tracking_uri_option(help: str = "MLflow tracking URI (default: the project's store in mlflow/)"):
    return click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help=help)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="no progress bars")


def folds_options(what: str = "'all' or e.g. 0,2", fold_file_help: str = "reuse a fold file (default: make one, seeded)"):
    """``--folds`` and ``--fold-file``: which folds to run, and of which split (:func:`liser.folds.resolve_folds`)."""
    return _stack(
        click.option("--folds", "folds_text", default="all", show_default=True, help=what),
        click.option("--fold-file", type=click.Path(dir_okay=False, path_type=Path), help=fold_file_help),
    )


def teacher_fit_options(f):
    """The options of every per-fold teacher fit (`liser teacher speech|prosodic|linguistic fit`)."""
    return _stack(
        click.option("--labeled", required=True, help=f"labeled corpus, {CORPUS_SPEC}"),
        folds_options("'all' or e.g. 0,2: one teacher per fold", "the students' fold file (default: the same seeded folds `liser train` makes)"),
        click.option("--epochs", type=int, help="at most this many epochs"),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a teacher setting, e.g. --set lr=1e-3"),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher folder (fold*/ or KIND-foldK.npz go here)"),
        device_option(),
        click.option("--seed", default=0, show_default=True, help="seed of the default folds"),
        quiet_option,
    )(f)


def teacher_fields(overrides, epochs: int | None, **given) -> dict:
    """A teacher's settings from ``--set`` pairs, ``--epochs`` and named options (``--backbone``)."""
    from liser.configs import parse_overrides

    return {**given, **parse_overrides(overrides), **({"epochs": epochs} if epochs is not None else {})}


def teacher_folds(corpus, fold_file, seed: int, folds_text: str, out_dir: Path):
    """The split and folds of a teacher fit, recorded once in ``out_dir/folds.json`` (the cache step reads it)."""
    from liser.folds import parse_fold_list, record_folds, resolve_folds

    folds = resolve_folds(corpus.manifest, fold_file, seed)
    picked = parse_fold_list(folds_text, len(folds))
    out_dir.mkdir(parents=True, exist_ok=True)
    record_folds(folds, out_dir / "folds.json", corpus=corpus.name, manifest_hash=corpus.manifest_hash(), seed=seed)
    return folds, picked


def pool_options(f):
    """Where a per-clip stage runs (:class:`liser.workers.Pool`): ``--workers``, ``--gpus-per-worker``, ``--address``."""
    return _stack(
        click.option("--workers", type=click.IntRange(1), help="worker processes (default: one per core of a local Ray, or this process for fewer than 48 clips)"),
        click.option("--gpus-per-worker", default=0.0, show_default=True, type=click.FloatRange(0), help="GPUs per worker; 0.25 shares one GPU by four"),
        click.option("--address", envvar="RAY_ADDRESS", help="run the workers on an existing Ray cluster, e.g. 10.0.0.5:6379 (the media must be on storage every node mounts)"),
    )(f)


def make_pool(workers: int | None, gpus_per_worker: float, address: str | None):
    from liser.workers import Pool

    return Pool(workers=workers, address=address, gpus_per_worker=gpus_per_worker)
