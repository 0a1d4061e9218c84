"""`liser teacher`: fit the teachers, cache their outputs over the unlabeled clips, and diagnose them."""

from __future__ import annotations

from pathlib import Path

import click

from liser.cli.options import cache_dir_option, fail, make_pool, pool_options, quiet_option, teacher_fields, teacher_fit_options, teacher_folds
from liser.cli.teacher_clip import teacher_linguistic, teacher_prosodic, teacher_upstream

UNLABELED_HELP = "audio-visual corpus, e.g. avclips:data/synth/avclips"


@click.group()
def teacher() -> None:
    """Fit the teachers and cache their outputs (a teacher runs once per clip)."""


teacher.add_command(teacher_prosodic)
teacher.add_command(teacher_linguistic)
teacher.add_command(teacher_upstream)


@teacher.group("speech")
def teacher_speech() -> None:
    """The HuBERT + LoRA speech teacher (sections 2.1, 3.2)."""


@teacher_speech.command("fit")
@teacher_fit_options
@click.option("--backbone", default="facebook/hubert-base-ls960", show_default=True, help="hub id, local folder, or tiny-synth (offline stand-in)")
def teacher_speech_fit(labeled, folds_text, fold_file, epochs, overrides, out_dir, device, seed, quiet, backbone) -> None:
    """Fit one speech teacher per fold, on that fold's training speakers only (paper: at most 50 epochs)."""
    from liser.corpora import load_corpus
    from liser.teachers.speech import TeacherError, fit_speech_teachers, make_config
    from liser.train import resolve_device

    try:
        corpus = load_corpus(labeled)
        cfg = make_config(**teacher_fields(overrides, epochs, backbone=backbone))
        folds, picked = teacher_folds(corpus, fold_file, seed, folds_text, out_dir)
        summary = fit_speech_teachers(corpus, folds, picked, cfg, out_dir, device=resolve_device(device), progress=not quiet)
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    for entry in summary["folds"]:
        click.echo(
            f"fold {entry['fold']}: val UAR {entry['val_uar']:.3f}  WAR {entry['val_war']:.3f}  "
            f"(0.5 s segments averaged: UAR {entry.get('val_segment_uar', float('nan')):.3f}; best epoch {entry['best_epoch']})"
        )
    click.echo(f"speech teachers in {out_dir}; next: liser teacher cache --unlabeled avclips:PATH --speech {out_dir} --out TEACHERS")


@teacher.group("video")
def teacher_video() -> None:
    """Face crops and the dynamic facial-expression (DFER) teacher (sections 2.2, 3.4)."""


@teacher_video.command("faces")
@click.option("--unlabeled", required=True, help=UNLABELED_HELP)
@click.option("--detector", default="opencv", show_default=True, help="a DeepFace detector, or prealigned for pre-cropped faces")
@click.option("--size", default=64, show_default=True, type=click.IntRange(16, 512),
              help="crop side in pixels: a small DFER reads crops of the size it was trained on (its .json's size)")
@cache_dir_option("cache root; faces go to CACHE/faces (default $LISER_CACHE or ~/.cache/liser)")
@pool_options
@quiet_option
def teacher_video_faces(unlabeled, detector, size, cache_dir, workers, gpus_per_worker, address, quiet) -> None:
    """Detect, align and crop the face in every frame with DeepFace; stored once per clip (in parallel with --workers)."""
    from liser.corpora import load_corpus
    from liser.teachers.faces import FaceStore, extract_corpus_faces

    try:
        corpus = load_corpus(unlabeled)
    except (ValueError, FileNotFoundError) as exc:
        fail(exc)
    store = FaceStore(None if cache_dir is None else cache_dir / "faces", detector=detector, size=size)
    counts = extract_corpus_faces(corpus, store, progress=not quiet, pool=make_pool(workers, gpus_per_worker, address))
    click.echo(
        f"{counts['clips']} clips: {counts['computed']} extracted, {counts['from_cache']} from cache; "
        f"{counts['frames_no_face']} of {counts['frames']} frames without a face; {counts['clips_no_face']} clips with no face at all"
    )
    for path, reason in counts["skipped"]:
        click.echo(f"  skipped {path}: {reason}")


@teacher_video.command("fit")
@click.option("--videos", required=True, type=click.Path(path_type=Path), help="labeled face videos: a folder with videos/ and labels.csv")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="checkpoint path (writes .pt and .json)")
@click.option("--epochs", type=int, help="at most this many epochs (default 15)")
@click.option("--detector", default="prealigned", show_default=True, help="prealigned for synthetic faces, opencv for real videos")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a setting, e.g. --set lr=1e-3 (see SmallDFERConfig)")
@quiet_option
def teacher_video_fit(videos, out_path, epochs, detector, overrides, quiet) -> None:
    """Train the small DFER network on labeled face videos (a stand-in for FERV39k)."""
    from liser.teachers.small_dfer import fit_small_dfer, make_dfer_config

    try:
        cfg = make_dfer_config(**teacher_fields(overrides, epochs, detector=detector))
        record = fit_small_dfer(videos, out_path, cfg, progress=not quiet)
    except (ValueError, FileNotFoundError) as exc:
        fail(exc)
    click.echo(f"small DFER: val UAR {record.get('val_uar', float('nan')):.3f}  WAR {record.get('val_war', float('nan')):.3f} -> {out_path}")


@teacher_video.command("import")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--unlabeled", help="audio-visual corpus whose clips the table should cover (reports the ones it lacks)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher-output folder")
def teacher_video_import(table, unlabeled, out_dir) -> None:
    """Import an external DFER's outputs (e.g. S2D): CSV/Parquet of clip_id, start_frame, 7 probabilities."""
    from liser.corpora import load_corpus
    from liser.teachers.dfer_import import import_dfer_outputs

    try:
        clip_ids = load_corpus(unlabeled).manifest["clip_id"] if unlabeled else None
        outputs = import_dfer_outputs(table, clip_ids=clip_ids)
    except (ValueError, FileNotFoundError) as exc:
        fail(exc)
    path = outputs.save(out_dir / "video.npz")
    click.echo(f"{len(outputs.clip_ids)} clips, {int(outputs.valid.sum())} windows with a target -> {path}")


@teacher.command("cache")
@click.option("--unlabeled", required=True, help=UNLABELED_HELP)
@click.option("--speech", "speech_run", type=click.Path(file_okay=False, path_type=Path), help="a `liser teacher speech fit` output folder")
@click.option("--video", "video_source", help="fer, small:CHECKPOINT or import:FILE")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher-output folder for `liser train --teachers`")
@click.option("--detector", default="opencv", show_default=True, help="face detector for the video teacher (prealigned for synthetic faces)")
@cache_dir_option("cache root (default $LISER_CACHE or ~/.cache/liser)")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA where a worker has it), cpu, cuda or cuda:N")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1), help="clips per speech-teacher batch (their 0.5 s segments go through together)")
@pool_options
@quiet_option
def teacher_cache(unlabeled, speech_run, video_source, out_dir, detector, cache_dir, device, batch_size, workers, gpus_per_worker, address, quiet) -> None:
    """Run the teachers over the unlabeled clips once and write the files the trainer reads.

    Clips the cache lacks go to worker processes in batches (a local Ray, or a cluster with
    --address); each result is written as it returns, so a killed run resumes where it stopped.
    """
    from liser.corpora import load_corpus
    from liser.teachers.pipeline import cache_speech_outputs, cache_video_outputs
    from liser.teachers.speech import TeacherError

    if not speech_run and not video_source:
        fail("give --speech RUN_DIR and/or --video SOURCE")
    try:
        corpus = load_corpus(unlabeled)
        pool = make_pool(workers, gpus_per_worker, address)
        if speech_run:
            runs = cache_speech_outputs(corpus, speech_run, out_dir, cache_dir=cache_dir, device=device, progress=not quiet, pool=pool, batch_size=batch_size)
            for fold, run in runs.items():
                click.echo(f"speech fold {fold}: ran on {run.computed} clips, {run.cached} from cache, {len(run.skipped)} skipped")
        if video_source:
            path, run = cache_video_outputs(corpus, video_source, out_dir, detector=detector, cache_dir=cache_dir, progress=not quiet, pool=pool)
            if run is not None:
                click.echo(f"video: ran on {run.computed} clips, {run.cached} from cache, {len(run.skipped)} skipped, {run.no_target} without any face window")
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    _report_teachers(out_dir, unlabeled, None)


def _report_teachers(folder: Path, unlabeled: str | None, labeled: str | None) -> None:
    from liser.reports.teachers import report_folder, summary_lines

    try:
        diag, paths = report_folder(folder, unlabeled=unlabeled, labeled=labeled)
    except (ValueError, FileNotFoundError) as exc:
        fail(exc)
    for line in summary_lines(diag):
        click.echo(line)
    click.echo(f"diagnosis page: {paths[0]} (tables: {', '.join(p.name for p in paths[1:])})")


@teacher.command("report")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--unlabeled", help="the unlabeled corpus the files cover, e.g. avclips:data/synth/avclips (default: the one the files recorded)")
@click.option("--labeled", help="the labeled corpus, for its class prior, e.g. ravdess:data/synth/ravdess (default: the speech teachers' own)")
def teacher_report(folder, unlabeled, labeled) -> None:
    """Are the teachers any good on the unlabeled clips? Writes FOLDER/teachers.html and teachers*.csv.

    Per teacher file: coverage, valid segments, predicted classes against the labeled
    prior, confidence (eq. 5's weight) and entropy, own validation UAR and, where the
    corpus keeps a hidden truth (the synthetic one), accuracy against it; speech-video
    agreement (Cohen's kappa on the shared classes) and agreement between fold teachers.
    Warns when a teacher looks collapsed.
    """
    _report_teachers(folder, unlabeled, labeled)
