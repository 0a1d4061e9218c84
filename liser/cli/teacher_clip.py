"""The clip-level teachers of the other methods: EmoDistill's prosodic and linguistic teachers, NSL's upstream model."""

from __future__ import annotations

from pathlib import Path

import click

from liser.cli.options import (
    cache_dir_option, device_option, fail, make_pool, pool_options, quiet_option, teacher_fields, teacher_fit_options, teacher_folds,
)


def _fit_clip_teachers(kind: str, labeled: str, folds_text: str, fold_file, seed: int, fields: dict, out_dir: Path, device: str, quiet: bool, **kw) -> None:
    """Shared body of `liser teacher prosodic|linguistic fit`: per-fold fits over the students' folds."""
    from liser.corpora import load_corpus
    from liser.teachers.speech import TeacherError
    from liser.train import resolve_device

    try:
        corpus = load_corpus(labeled)
        folds, picked = teacher_folds(corpus, fold_file, seed, folds_text, out_dir)
        if kind == "prosodic":
            from liser.teachers.prosodic import ProsodicTeacherConfig, fit_prosodic_teachers

            summary = fit_prosodic_teachers(
                corpus, folds, picked, ProsodicTeacherConfig(**fields), out_dir, device=resolve_device(device), progress=not quiet, log=click.echo, **kw
            )
        else:
            from liser.teachers.linguistic import fit_linguistic_teachers, make_config

            summary = fit_linguistic_teachers(corpus, folds, picked, make_config(**fields), out_dir, device=resolve_device(device), progress=not quiet, log=click.echo)
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    for entry in summary["folds"]:
        click.echo(f"fold {entry['fold']}: {kind} teacher val UAR {entry['val_uar']:.3f}  WAR {entry['val_war']:.3f}  (best epoch {entry.get('best_epoch')})")
    click.echo(f"{kind} teachers in {out_dir} ({kind}-foldK.npz); train with: liser train --labeled {labeled} --teachers {out_dir} --config emodistill")


@click.group("prosodic")
def teacher_prosodic() -> None:
    """EmoDistill's prosodic teacher: eGeMAPS LLDs (opensmile) into a 4-block 2D ResNet."""


@teacher_prosodic.command("fit")
@teacher_fit_options
@cache_dir_option("cache root for the LLDs (default $LISER_CACHE or ~/.cache/liser)")
@pool_options
def teacher_prosodic_fit(labeled, folds_text, fold_file, epochs, overrides, out_dir, device, seed, quiet, cache_dir, workers, gpus_per_worker, address) -> None:
    """Fit one prosodic teacher per fold (its training speakers only) and write prosodic-foldK.npz."""
    pool = make_pool(workers, gpus_per_worker, address)
    _fit_clip_teachers(
        "prosodic", labeled, folds_text, fold_file, seed, teacher_fields(overrides, epochs), out_dir, device, quiet, cache_dir=cache_dir, pool=pool
    )


@click.group("linguistic")
def teacher_linguistic() -> None:
    """EmoDistill's linguistic teacher: a BERT-family text classifier on the transcripts."""


@teacher_linguistic.command("fit")
@teacher_fit_options
@click.option("--backbone", default="tiny-text", show_default=True, help="hub id (bert-base-uncased, the paper's), local folder, or tiny-text (offline)")
def teacher_linguistic_fit(labeled, folds_text, fold_file, epochs, overrides, out_dir, device, seed, quiet, backbone) -> None:
    """Fit one linguistic teacher per fold (its training speakers only) and write linguistic-foldK.npz."""
    _fit_clip_teachers("linguistic", labeled, folds_text, fold_file, seed, teacher_fields(overrides, epochs, backbone=backbone), out_dir, device, quiet)


@click.command("upstream")
@click.option("--source", help="source corpus the upstream model is fitted on, e.g. ravdess:PATH (NSL paper: RAVDESS)")
@click.option("--target", required=True, help="target corpus whose clips the graph joins, e.g. table:PATH (NSL paper: DEMoS)")
@click.option("--teacher", "teacher_dir", type=click.Path(file_okay=False, path_type=Path), help="an already fitted speech teacher folder (skips the fit)")
@click.option("--backbone", default="facebook/hubert-base-ls960", show_default=True, help="hub id, local folder, or tiny-synth (offline stand-in)")
@click.option("--epochs", type=int, help="at most this many epochs of the upstream fit")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a speech-teacher setting")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher folder: upstream.npz goes here")
@cache_dir_option("cache root (default $LISER_CACHE or ~/.cache/liser)")
@device_option()
@pool_options
@quiet_option
def teacher_upstream(source, target, teacher_dir, backbone, epochs, overrides, out_dir, cache_dir, device, workers, gpus_per_worker, address, quiet) -> None:
    """NSL's upstream model: fit a speech teacher on a source corpus, then embed every target clip.

    \b
    The embedding is the time-mean of the teacher head's projector output (the paper's
    FC-layer output averaged over time). Trials build each fold's graph from it.
    """
    from liser.corpora import load_corpus
    from liser.teachers.speech import TeacherError, make_config
    from liser.teachers.upstream import embed_corpus, fit_upstream
    from liser.train import resolve_device

    if not source and not teacher_dir:
        fail("give --source NAME:PATH to fit the upstream model, or --teacher DIR to use a fitted one")
    try:
        dev = resolve_device(device)
        tgt = load_corpus(target)
        if teacher_dir is None:
            src = load_corpus(source)
            if src.manifest_hash() == tgt.manifest_hash():
                fail(f"--source and --target are the same corpus ({source}); NSL transfers from another corpus")
            teacher_dir = out_dir / "upstream-teacher"
            record = fit_upstream(src, make_config(**teacher_fields(overrides, epochs, backbone=backbone)), teacher_dir, device=dev, progress=not quiet, log=click.echo)
            click.echo(f"upstream model ({src.name}, {len(record['train_speakers'])} speakers): val UAR {record['val_uar']:.3f}")
        pool = make_pool(workers, gpus_per_worker, address)
        outputs, run = embed_corpus(teacher_dir, tgt, out_dir / "upstream.npz", cache_dir=cache_dir, device=dev, progress=not quiet, pool=pool)
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    click.echo(
        f"upstream embeddings of {len(outputs)} {tgt.name} clips (dim {outputs.embeddings.shape[1]}): ran on {run.computed}, "
        f"{run.cached} from cache, {len(run.skipped)} skipped -> {out_dir / 'upstream.npz'}"
    )
