"""`liser train`: students fold by fold, outside any study."""

from __future__ import annotations

from pathlib import Path

import click

from liser.cli.options import CORPUS_SPEC, cache_dir_option, device_option, fail, folds_options, quiet_option


@click.command("train")
@click.option("--labeled", required=True, help=f"labeled corpus, {CORPUS_SPEC}")
@click.option("--unlabeled", help="unlabeled audio-visual corpus, e.g. avclips:data/synth/avclips")
@click.option("--teachers", type=click.Path(path_type=Path), help="teacher-output folder (from `liser teacher cache`)")
@click.option("--speech-teacher", type=click.Path(path_type=Path), help="speech teacher outputs: a folder of speech-foldK.npz or one file (overrides --teachers)")
@click.option("--video-teacher", type=click.Path(path_type=Path), help="video teacher outputs: a folder or one video.npz (overrides --teachers)")
@click.option("--config", "config_name", default="no-dstl", show_default=True, help="a named configuration (see README; e.g. vid-sp-dstl, emodistill, nsl) or a .yaml file")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config field, e.g. --set lambda_sd=5")
@click.option("--fold", type=int, help="train one fold (same as --folds N)")
@folds_options()
@click.option("--epochs", type=int, help="shortcut for --set epochs=N")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="output folder (default runs/CONFIG-CORPUS)")
@device_option()
@cache_dir_option()
@click.option("--seed", type=int, help="shortcut for --set seed=N (also seeds the folds)")
@quiet_option
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
    from liser.folds import parse_fold_list, record_folds, resolve_folds
    from liser.targets import TeacherFileError, find_teacher_files
    from liser.train import TrainingDiverged, resolve_device, set_threads, train

    try:
        extra = parse_overrides(overrides)
        extra.update({k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None})
        cfg = make_config(config_name, **extra)
        dev = resolve_device(device)
        set_threads()
        teacher_files = dict(find_teacher_files(teachers)) if teachers else {}
        for kind, given in (("speech", speech_teacher), ("video", video_teacher)):
            if given:
                teacher_files.update(find_teacher_files(given, kind))
        cfg.check_inputs(teacher_files, bool(unlabeled))
        teacher_files = {k: v for k, v in teacher_files.items() if k in cfg.teacher_kinds}
        lab = load_corpus_data(labeled, cache_dir, progress=not quiet)
        if not lab.corpus.labeled:
            fail(f"--labeled {labeled}: this corpus has no labels; give it as --unlabeled")
        unl = load_corpus_data(unlabeled, cache_dir, progress=not quiet) if unlabeled and cfg.uses_unlabeled else None
        if unlabeled and not cfg.uses_unlabeled:
            click.echo(f"note: configuration {cfg.name} does not distil from unlabeled clips, so --unlabeled is not used", err=True)
        teacher_outputs = load_teachers(teacher_files, lab.corpus.classes) if cfg.distills else {}
        out_dir = out_dir or Path("runs") / f"{cfg.name}-{lab.corpus.name}"
        out_dir.mkdir(parents=True, exist_ok=True)
        folds = resolve_folds(lab.corpus.manifest, fold_file, cfg.seed, speakers=lab.table["speaker"].unique())
        if not fold_file:
            fold_file = record_folds(folds, out_dir / "folds.json", corpus=lab.corpus.name, manifest_hash=lab.corpus.manifest_hash(), seed=cfg.seed)
        picked = parse_fold_list(str(fold) if fold is not None else folds_text, len(folds))
        skipped, ignored = len(lab.skipped()), len(lab.corpus.ignored)
        other = f", {ignored} other files ignored" if ignored else ""
        click.echo(f"{lab.corpus.name}: {len(lab.table)} usable clips ({skipped} skipped{other}, see `liser data check {labeled}`); device {dev}")
        train(
            cfg, lab, folds, picked, out_dir,
            unlabeled=unl, teachers=teacher_outputs, device=dev, progress=not quiet, log=click.echo,
            extra={"fold_file": str(fold_file)},
        )
    except (ConfigError, TeacherFileError, TrainingDiverged, ValueError, FileNotFoundError) as exc:
        fail(exc)
