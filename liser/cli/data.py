"""`liser data` (generate, inspect and split corpora) and `liser model` (the student, Table 1)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from liser.cli.options import cache_dir_option, fail, make_pool, pool_options
from liser.constants import N_FOLDS
from liser.errors import DataError


@click.group()
def data() -> None:
    """Generate, inspect and split corpora."""


@data.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--actors", default=24, show_default=True, type=click.IntRange(1, 24), help="labeled speakers, 60 RAVDESS-style clips each (RAVDESS has 24)")
@click.option("--unlabeled-clips", default=200, show_default=True, help="MSP-Face-style mp4 clips")
@click.option("--seed", default=0, show_default=True)
@click.option("--sample-rate", default=16000, show_default=True, help="rate of the labeled wavs (real RAVDESS: 48000)")
@click.option("--video-size", default=112, show_default=True, help="video frame side in pixels")
@click.option("--face-videos", default=140, show_default=True, help="labeled face videos for the small DFER teacher (0: none)")
@click.option("--cremad-actors", default=0, show_default=True, type=click.IntRange(0, 91), help="also write a CREMA-D-layout corpus with this many actors (24 clips each)")
@click.option("--workers", default=2, show_default=True)
def data_synth(out_dir: Path, actors: int, unlabeled_clips: int, seed: int, sample_rate: int, video_size: int, face_videos: int, cremad_actors: int, workers: int) -> None:
    """Write the built-in synthetic corpus.

    \b
    OUT_DIR/ravdess/        labeled speech in the exact RAVDESS layout
    OUT_DIR/avclips/        unlabeled MSP-Face-style mp4 clips (drawn faces + speech)
    OUT_DIR/face-videos/    labeled face videos for the small DFER teacher (FERV39k stand-in)
    OUT_DIR/oracle-teachers noisy oracle teacher outputs, for trying distillation without teachers
    OUT_DIR/cremad/         (--cremad-actors N) labeled speech in the CREMA-D layout, with
                            its oracle teachers in OUT_DIR/oracle-teachers-cremad
    """
    from liser.synth import generate
    from liser.synth.face_videos import generate_face_videos

    summary = generate(
        out_dir, actors=actors, unlabeled_clips=unlabeled_clips, seed=seed, sample_rate=sample_rate, video_size=video_size, workers=workers,
        cremad_actors=cremad_actors,
    )
    if face_videos:
        summary["face_videos"] = generate_face_videos(out_dir / "face-videos", n_clips=face_videos, seed=seed)
    click.echo(json.dumps(summary, indent=1, default=str))


@data.command("check")
@click.argument("spec")
@cache_dir_option()
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="also write the report as JSON")
@pool_options
def data_check(spec: str, cache_dir: Path | None, json_out: Path | None, workers, gpus_per_worker, address) -> None:
    """What is in a corpus, what is unusable and why. SPEC is NAME:PATH.

    Decodes every clip once (filling the feature cache) and reports the usable clips
    per speaker and label, the skipped files with their reasons, and the fixes applied.
    """
    from liser.data import load_corpus_data

    try:
        data = load_corpus_data(spec, cache_dir, pool=make_pool(workers, gpus_per_worker, address))
    except (ValueError, FileNotFoundError) as exc:
        fail(exc)
    report = data.report()
    table = data.table
    click.echo(f"{report['corpus']} at {report['root']}  (manifest hash {report['manifest_hash']})")
    click.echo(f"  files found    {report['clips_found']}")
    click.echo(f"  usable clips   {report['clips_usable']}  from {table['speaker'].nunique()} speakers, {table['duration'].sum() / 3600:.2f} h")
    if data.corpus.labeled:
        counts = table["label"].value_counts()
        click.echo("  per label      " + ", ".join(f"{c} {counts.get(c, 0)}" for c in data.corpus.classes))
    skipped = data.skipped()
    click.echo(f"  skipped        {len(skipped)}")
    for reason, group in skipped.groupby("reason"):
        click.echo(f"    {len(group):5d}  {reason}   e.g. {group['path'].iloc[0]}")
    ignored = report["ignored"]
    if ignored:
        kinds = sorted({Path(f).suffix.lower() or "(no extension)" for f in ignored})
        click.echo(f"  ignored        {len(ignored)} files that are not {report['corpus']} media ({', '.join(kinds[:6])})   e.g. {ignored[0]}")
    for fix, n in sorted(report["fixes"].items()):
        click.echo(f"  fixed {n:5d}  {fix}")
    if json_out:
        from liser.storage import write_text_atomic

        write_text_atomic(json_out, json.dumps(report, indent=1))
        click.echo(f"report written to {json_out}")
    if not report["clips_usable"]:
        raise DataError(f"{spec}: no usable clips ({report['clips_found']} media files found, {len(ignored)} other files); check the path and the corpus name")


@data.command("folds")
@click.argument("spec")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n-folds", default=N_FOLDS, show_default=True)
@click.option("--seed", default=0, show_default=True)
def data_folds(spec: str, out_file: Path, n_folds: int, seed: int) -> None:
    """Write a speaker-independent fold file for a corpus (reads the layout only)."""
    from liser.corpora import load_corpus
    from liser.folds import folds_for, save_folds

    try:
        corpus = load_corpus(spec)
        folds = folds_for(corpus.manifest, n_folds, seed)
    except (ValueError, FileNotFoundError) as exc:
        fail(exc)
    save_folds(folds, out_file, corpus=corpus.name, manifest_hash=corpus.manifest_hash(), seed=seed)
    for f in folds:
        click.echo(f"fold {f.index}: train {len(f.train)}  val {len(f.val)}  test {len(f.test)} speakers")
    click.echo(f"written to {out_file}")


@click.command("model")
@click.option("--classes", default=8, show_default=True, help="K_S, emotion classes of the labeled corpus")
@click.option("--video-classes", default=7, show_default=True, help="K_V, classes of the video teacher")
def model_cmd(classes: int, video_classes: int) -> None:
    """The student's layers, shapes and parameter count (Table 1)."""
    from liser.constants import CROP_FRAMES
    from liser.model import Student, describe

    click.echo(describe(Student(classes, video_classes), CROP_FRAMES))
