"""The ``liser`` command: a thin layer over plain functions that tests call directly."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from liser import __version__

CORPUS_SPEC = "NAME:PATH, e.g. ravdess:data/synth/ravdess (corpora: ravdess, cremad, avclips)"


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="liser")
def main() -> None:
    """liser: knowledge-distillation studies for speech emotion recognition.

    \b
    Start here:
      liser data synth data/synth
      liser train --labeled ravdess:data/synth/ravdess --config no-dstl --folds all
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ----------------------------------------------------------------------- data
@main.group()
def data() -> None:
    """Generate, inspect and split corpora."""


@data.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--actors", default=24, show_default=True, type=click.IntRange(1, 24), help="labeled speakers, 60 RAVDESS-style clips each (RAVDESS has 24)")
@click.option("--unlabeled-clips", default=200, show_default=True, help="MSP-Face-style mp4 clips")
@click.option("--seed", default=0, show_default=True)
@click.option("--sample-rate", default=16000, show_default=True, help="rate of the labeled wavs (real RAVDESS: 48000)")
@click.option("--video-size", default=112, show_default=True, help="video frame side in pixels")
@click.option("--workers", default=2, show_default=True)
def data_synth(out_dir: Path, actors: int, unlabeled_clips: int, seed: int, sample_rate: int, video_size: int, workers: int) -> None:
    """Write the built-in synthetic corpus: RAVDESS layout, MSP-Face clips, oracle teacher files."""
    from liser.synth import generate

    summary = generate(
        out_dir, actors=actors, unlabeled_clips=unlabeled_clips, seed=seed, sample_rate=sample_rate, video_size=video_size, workers=workers
    )
    click.echo(json.dumps(summary, indent=1, default=str))


@data.command("check")
@click.argument("spec")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="feature cache (default $LISER_CACHE or ~/.cache/liser)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="also write the report as JSON")
def data_check(spec: str, cache_dir: Path | None, json_out: Path | None) -> None:
    """What is in a corpus, what is unusable and why. SPEC is NAME:PATH.

    Decodes every clip once (filling the feature cache) and reports the usable clips
    per speaker and label, the skipped files with their reasons, and the fixes applied.
    """
    from liser.data import load_corpus_data

    try:
        data = load_corpus_data(spec, cache_dir)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
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
    for fix, n in sorted(report["fixes"].items()):
        click.echo(f"  fixed {n:5d}  {fix}")
    if json_out:
        json_out.write_text(json.dumps(report, indent=1))
        click.echo(f"report written to {json_out}")


@data.command("folds")
@click.argument("spec")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n-folds", default=5, show_default=True)
@click.option("--seed", default=0, show_default=True)
def data_folds(spec: str, out_file: Path, n_folds: int, seed: int) -> None:
    """Write a speaker-independent fold file for a corpus (reads the layout only)."""
    from liser.corpora import load_corpus
    from liser.folds import make_folds, save_folds

    corpus = load_corpus(spec)
    folds = _make_folds(corpus, n_folds, seed)
    save_folds(folds, out_file, corpus=corpus.name, manifest_hash=corpus.manifest_hash(), seed=seed)
    for f in folds:
        click.echo(f"fold {f.index}: train {len(f.train)}  val {len(f.val)}  test {len(f.test)} speakers")
    click.echo(f"written to {out_file}")


def _make_folds(corpus, n_folds: int, seed: int):
    from liser.folds import make_folds

    m = corpus.manifest
    strata = dict(zip(m["speaker"], m["gender"])) if "gender" in m else None
    return make_folds(m["speaker"].unique(), n_folds, seed, strata)


# ----------------------------------------------------------------------- model
@main.command("model")
@click.option("--classes", default=8, show_default=True, help="K_S, emotion classes of the labeled corpus")
@click.option("--video-classes", default=7, show_default=True, help="K_V, classes of the video teacher")
def model_cmd(classes: int, video_classes: int) -> None:
    """The student's layers, shapes and parameter count (Table 1)."""
    from liser.constants import CROP_FRAMES
    from liser.model import Student, describe

    click.echo(describe(Student(classes, video_classes), CROP_FRAMES))


# ----------------------------------------------------------------------- train
def _parse_folds(text: str, n_folds: int) -> list[int]:
    if text == "all":
        return list(range(n_folds))
    try:
        picked = sorted({int(x) for x in text.split(",")})
    except ValueError:
        _fail(f"--folds {text!r}: use 'all' or comma-separated fold numbers such as 0,2")
    bad = [k for k in picked if not 0 <= k < n_folds]
    if bad:
        _fail(f"--folds: fold(s) {bad} do not exist; folds are 0..{n_folds - 1}")
    return picked


@main.command("train")
@click.option("--labeled", required=True, help=f"labeled corpus, {CORPUS_SPEC}")
@click.option("--unlabeled", help="unlabeled audio-visual corpus, e.g. avclips:data/synth/avclips")
@click.option("--teachers", type=click.Path(path_type=Path), help="folder with speech.npz and/or video.npz teacher outputs")
@click.option("--speech-teacher", type=click.Path(path_type=Path), help="speech teacher-output file (overrides --teachers)")
@click.option("--video-teacher", type=click.Path(path_type=Path), help="video teacher-output file (overrides --teachers)")
@click.option("--config", "config_name", default="no-dstl", show_default=True, help="a named configuration or a .yaml file")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config field, e.g. --set lambda_sd=5")
@click.option("--fold", type=int, help="train one fold (same as --folds N)")
@click.option("--folds", "folds_text", default="all", show_default=True, help="'all' or e.g. 0,2")
@click.option("--fold-file", type=click.Path(dir_okay=False, path_type=Path), help="reuse a fold file (default: make one, seeded)")
@click.option("--epochs", type=int, help="shortcut for --set epochs=N")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="output folder (default runs/CONFIG-CORPUS)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="feature cache (default $LISER_CACHE or ~/.cache/liser)")
@click.option("--seed", type=int, help="shortcut for --set seed=N (also seeds the folds)")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars")
def train_cmd(
    labeled, unlabeled, teachers, speech_teacher, video_teacher, config_name, overrides, fold, folds_text, fold_file, epochs, out_dir, device, cache_dir, seed, quiet
) -> None:
    """Train students fold by fold; print UAR/WAR; write results.json and checkpoints.

    \b
    liser train --labeled ravdess:PATH --config no-dstl --fold 0
    liser train --labeled cremad:PATH --unlabeled avclips:PATH --teachers DIR --config conf-vid-sp-dstl
    """
    from liser.configs import ConfigError, make_config, parse_overrides
    from liser.data import load_corpus_data, load_teachers
    from liser.folds import load_folds, save_folds
    from liser.teachers.outputs import TeacherFileError, find_teacher_files
    from liser.train import TrainingDiverged, resolve_device, set_threads, train

    try:
        extra = parse_overrides(overrides)
        if epochs is not None:
            extra["epochs"] = epochs
        if seed is not None:
            extra["seed"] = seed
        cfg = make_config(config_name, **extra)
        dev = resolve_device(device)
        set_threads()
        teacher_files = dict(find_teacher_files(teachers)) if teachers else {}
        if speech_teacher:
            teacher_files["speech"] = speech_teacher
        if video_teacher:
            teacher_files["video"] = video_teacher
        needs = [k for k, lam in (("speech", cfg.lambda_sd), ("video", cfg.lambda_vd)) if lam > 0]
        if needs and (not unlabeled or any(k not in teacher_files for k in needs)):
            _fail(
                f"configuration {cfg.name} distils from the {' and '.join(needs)} teacher, so it needs --unlabeled and "
                f"{' and '.join(k + ' teacher outputs' for k in needs)} (--teachers DIR or --{needs[0]}-teacher FILE)"
            )
        lab = load_corpus_data(labeled, cache_dir, progress=not quiet)
        if not lab.corpus.labeled:
            _fail(f"--labeled {labeled}: this corpus has no labels; give it as --unlabeled")
        unl = load_corpus_data(unlabeled, cache_dir, progress=not quiet) if unlabeled and cfg.distills else None
        if unlabeled and not cfg.distills:
            click.echo(f"note: configuration {cfg.name} does not distil, so --unlabeled is not used", err=True)
        teacher_outputs = load_teachers(teacher_files, lab.corpus.classes) if cfg.distills else {}
        out_dir = out_dir or Path("runs") / f"{cfg.name}-{lab.corpus.name}"
        out_dir.mkdir(parents=True, exist_ok=True)
        speakers = lab.table["speaker"].unique()
        if fold_file:
            folds = load_folds(fold_file, speakers)
        else:
            folds = _make_folds(lab.corpus, 5, cfg.seed)
            fold_file = save_folds(folds, out_dir / "folds.json", corpus=lab.corpus.name, manifest_hash=lab.corpus.manifest_hash(), seed=cfg.seed)
        picked = _parse_folds(str(fold) if fold is not None else folds_text, len(folds))
        skipped = len(lab.skipped())
        click.echo(f"{lab.corpus.name}: {len(lab.table)} usable clips ({skipped} skipped, see `liser data check {labeled}`); device {dev}")
        train(
            cfg, lab, folds, picked, out_dir,
            unlabeled=unl, teachers=teacher_outputs, device=dev, progress=not quiet, log=click.echo,
            extra={"fold_file": str(fold_file)},
        )
    except (ConfigError, TeacherFileError, TrainingDiverged, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
