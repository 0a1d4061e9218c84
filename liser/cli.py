"""The ``liser`` command: a thin layer over plain functions that tests call directly."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from liser import __version__
from liser.errors import DataError, LiserError

CORPUS_SPEC = "NAME:PATH, e.g. ravdess:data/synth/ravdess (corpora: ravdess, cremad, iemocap, table (alias csv), avclips)"


def _fail(problem: str | Exception) -> None:
    """A user error: a :class:`LiserError` keeps its kind and exit code; anything else exits 1."""
    if isinstance(problem, LiserError):
        raise problem
    raise click.ClickException(str(problem))


class _Liser(click.Group):
    """Turns every :class:`LiserError` into one line and its exit code; ``--debug`` keeps the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LiserError as exc:
            if _debugging(ctx):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            click.echo(f"Error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # a path the user gave that cannot be read or written: theirs to fix, not a bug
            if exc.filename is None or _debugging(ctx):
                raise
            click.echo(f"Error: {exc.filename}: {exc.strerror or exc}; choose another path or fix its permissions", err=True)
            ctx.exit(3)


def _debug(ctx: click.Context, _param, value: bool) -> None:
    ctx.meta["liser.debug"] = value


def _debugging(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("liser.debug") or os.environ.get("LISER_DEBUG"))


@click.group(cls=_Liser, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="liser")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_debug, help="show the traceback of a user error too (or set LISER_DEBUG=1)")
def main() -> None:
    """liser: knowledge-distillation studies for speech emotion recognition.

    \b
    Start here:
      liser data synth data/synth
      liser train --labeled ravdess:data/synth/ravdess --config no-dstl --folds all
      liser demo                       # the whole chain, studies and dashboards (--methods all: + EmoDistill, NSL)
    Other methods on the synthetic corpus (oracle teachers written by `data synth`):
      liser train --labeled table:data/synth/transcribed.csv --teachers data/synth/oracle-teachers-emodistill --config emodistill
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
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="feature cache (default $LISER_CACHE or ~/.cache/liser)")
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
        _fail(exc)
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
        json_out.write_text(json.dumps(report, indent=1))
        click.echo(f"report written to {json_out}")
    if not report["clips_usable"]:
        raise DataError(f"{spec}: no usable clips ({report['clips_found']} media files found, {len(ignored)} other files); check the path and the corpus name")


@data.command("folds")
@click.argument("spec")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n-folds", default=5, show_default=True)
@click.option("--seed", default=0, show_default=True)
def data_folds(spec: str, out_file: Path, n_folds: int, seed: int) -> None:
    """Write a speaker-independent fold file for a corpus (reads the layout only)."""
    from liser.corpora import load_corpus
    from liser.folds import save_folds

    try:
        corpus = load_corpus(spec)
        folds = _make_folds(corpus, n_folds, seed)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    save_folds(folds, out_file, corpus=corpus.name, manifest_hash=corpus.manifest_hash(), seed=seed)
    for f in folds:
        click.echo(f"fold {f.index}: train {len(f.train)}  val {len(f.val)}  test {len(f.test)} speakers")
    click.echo(f"written to {out_file}")


def _make_folds(corpus, n_folds: int, seed: int):
    from liser.folds import folds_for

    return folds_for(corpus.manifest, n_folds, seed)


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
@click.option("--teachers", type=click.Path(path_type=Path), help="teacher-output folder (from `liser teacher cache`)")
@click.option("--speech-teacher", type=click.Path(path_type=Path), help="speech teacher outputs: a folder of speech-foldK.npz or one file (overrides --teachers)")
@click.option("--video-teacher", type=click.Path(path_type=Path), help="video teacher outputs: a folder or one video.npz (overrides --teachers)")
@click.option("--config", "config_name", default="no-dstl", show_default=True, help="a named configuration (see README; e.g. vid-sp-dstl, emodistill, nsl) or a .yaml file")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config field, e.g. --set lambda_sd=5")
@click.option("--fold", type=int, help="train one fold (same as --folds N)")
@click.option("--folds", "folds_text", default="all", show_default=True, help="'all' or e.g. 0,2")
@click.option("--fold-file", type=click.Path(dir_okay=False, path_type=Path), help="reuse a fold file (default: make one, seeded)")
@click.option("--epochs", type=int, help="shortcut for --set epochs=N")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="output folder (default runs/CONFIG-CORPUS)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="feature cache (default $LISER_CACHE or ~/.cache/liser)")
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
    from liser.targets import TeacherFileError, find_teacher_files
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
        for kind, given in (("speech", speech_teacher), ("video", video_teacher)):
            if given:
                teacher_files.update(find_teacher_files(given, kind))
        needs = list(cfg.teacher_kinds)
        if cfg.uses_unlabeled and (not unlabeled or any(k not in teacher_files for k in needs)):
            _fail(
                f"configuration {cfg.name} distils from the {' and '.join(needs)} teacher, so it needs --unlabeled and "
                f"{' and '.join(k + ' teacher outputs' for k in needs)} (--teachers DIR or --{needs[0]}-teacher FILE)"
            )
        lacking = [k for k in needs if k not in teacher_files]
        if lacking:
            _fail(
                f"configuration {cfg.name} (method {cfg.method}) needs {' and '.join(lacking)} teacher outputs: pass --teachers DIR "
                f"holding {', '.join(k + ('.npz' if k == 'upstream' else '-foldK.npz') for k in lacking)} "
                "(from `liser teacher prosodic fit`, `liser teacher linguistic fit` or `liser teacher upstream`)"
            )
        teacher_files = {k: v for k, v in teacher_files.items() if k in needs}
        lab = load_corpus_data(labeled, cache_dir, progress=not quiet)
        if not lab.corpus.labeled:
            _fail(f"--labeled {labeled}: this corpus has no labels; give it as --unlabeled")
        unl = load_corpus_data(unlabeled, cache_dir, progress=not quiet) if unlabeled and cfg.uses_unlabeled else None
        if unlabeled and not cfg.uses_unlabeled:
            click.echo(f"note: configuration {cfg.name} does not distil from unlabeled clips, so --unlabeled is not used", err=True)
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
        skipped, ignored = len(lab.skipped()), len(lab.corpus.ignored)
        other = f", {ignored} other files ignored" if ignored else ""
        click.echo(f"{lab.corpus.name}: {len(lab.table)} usable clips ({skipped} skipped{other}, see `liser data check {labeled}`); device {dev}")
        train(
            cfg, lab, folds, picked, out_dir,
            unlabeled=unl, teachers=teacher_outputs, device=dev, progress=not quiet, log=click.echo,
            extra={"fold_file": str(fold_file)},
        )
    except (ConfigError, TeacherFileError, TrainingDiverged, ValueError, FileNotFoundError) as exc:
        _fail(exc)


# ----------------------------------------------------------------------- teachers
@main.group()
def teacher() -> None:
    """Fit the teachers and cache their outputs (a teacher runs once per clip)."""


@teacher.group("speech")
def teacher_speech() -> None:
    """The HuBERT + LoRA speech teacher (sections 2.1, 3.2)."""


@teacher_speech.command("fit")
@click.option("--labeled", required=True, help=f"labeled corpus, {CORPUS_SPEC}")
@click.option("--folds", "folds_text", default="all", show_default=True, help="'all' or e.g. 0,2: one teacher per fold")
@click.option("--fold-file", type=click.Path(dir_okay=False, path_type=Path), help="the students' fold file (default: the same seeded folds `liser train` makes)")
@click.option("--backbone", default="facebook/hubert-base-ls960", show_default=True, help="hub id, local folder, or tiny-synth (offline stand-in)")
@click.option("--epochs", type=int, help="at most this many epochs (paper: 50)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a teacher setting, e.g. --set lr=1e-3")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="folder for fold*/ teachers")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True, help="seed of the default folds")
@click.option("-q", "--quiet", is_flag=True)
def teacher_speech_fit(labeled, folds_text, fold_file, backbone, epochs, overrides, out_dir, device, seed, quiet) -> None:
    """Fit one speech teacher per fold, on that fold's training speakers only."""
    from liser.configs import parse_overrides
    from liser.corpora import load_corpus
    from liser.folds import load_folds, save_folds
    from liser.teachers.speech import TeacherError, fit_speech_teachers, make_config
    from liser.train import resolve_device

    try:
        corpus = load_corpus(labeled)
        fields = {"backbone": backbone, **parse_overrides(overrides)}
        if epochs is not None:
            fields["epochs"] = epochs
        cfg = make_config(**fields)
        folds = load_folds(fold_file, corpus.manifest["speaker"].unique()) if fold_file else _make_folds(corpus, 5, seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_folds(folds, out_dir / "folds.json", corpus=corpus.name, manifest_hash=corpus.manifest_hash(), seed=seed)
        summary = fit_speech_teachers(
            corpus, folds, _parse_folds(folds_text, len(folds)), cfg, out_dir, device=resolve_device(device), progress=not quiet
        )
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
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
@click.option("--unlabeled", required=True, help="audio-visual corpus, e.g. avclips:data/synth/avclips")
@click.option("--detector", default="opencv", show_default=True, help="a DeepFace detector, or prealigned for pre-cropped faces")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-q", "--quiet", is_flag=True)
def teacher_video_faces(unlabeled, detector, cache_dir, quiet) -> None:
    """Detect, align and crop the face in every frame with DeepFace; stored once per clip."""
    from liser.corpora import load_corpus
    from liser.teachers.faces import FaceStore, extract_corpus_faces

    try:
        corpus = load_corpus(unlabeled)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    store = FaceStore(None if cache_dir is None else cache_dir / "faces", detector=detector)
    counts = extract_corpus_faces(corpus, store, progress=not quiet)
    click.echo(
        f"{counts['clips']} clips: {counts['computed']} extracted, {counts['from_cache']} from cache; "
        f"{counts['frames_no_face']} of {counts['frames']} frames without a face; {counts['clips_no_face']} clips with no face at all"
    )
    for path, reason in counts["skipped"]:
        click.echo(f"  skipped {path}: {reason}")


@teacher_video.command("fit")
@click.option("--videos", required=True, type=click.Path(path_type=Path), help="labeled face videos: a folder with videos/ and labels.csv")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="checkpoint path (writes .pt and .json)")
@click.option("--epochs", default=15, show_default=True)
@click.option("--detector", default="prealigned", show_default=True, help="prealigned for synthetic faces, opencv for real videos")
@click.option("-q", "--quiet", is_flag=True)
def teacher_video_fit(videos, out_path, epochs, detector, quiet) -> None:
    """Train the small DFER network on labeled face videos (a stand-in for FERV39k)."""
    from liser.teachers.video import fit_small_dfer

    try:
        record = fit_small_dfer(videos, out_path, epochs, detector=detector, progress=not quiet)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    click.echo(f"small DFER: val UAR {record.get('val_uar', float('nan')):.3f}  WAR {record.get('val_war', float('nan')):.3f} -> {out_path}")


@teacher_video.command("import")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--unlabeled", help="audio-visual corpus whose clips the table should cover (reports the ones it lacks)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher-output folder")
def teacher_video_import(table, unlabeled, out_dir) -> None:
    """Import an external DFER's outputs (e.g. S2D): CSV/Parquet of clip_id, start_frame, 7 probabilities."""
    from liser.corpora import load_corpus
    from liser.teachers.video import import_dfer_outputs

    try:
        clip_ids = load_corpus(unlabeled).manifest["clip_id"] if unlabeled else None
        outputs = import_dfer_outputs(table, clip_ids=clip_ids)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    path = outputs.save(out_dir / "video.npz")
    click.echo(f"{len(outputs.clip_ids)} clips, {int(outputs.valid.sum())} windows with a target -> {path}")


@teacher.command("cache")
@click.option("--unlabeled", required=True, help="audio-visual corpus, e.g. avclips:data/synth/avclips")
@click.option("--speech", "speech_run", type=click.Path(file_okay=False, path_type=Path), help="a `liser teacher speech fit` output folder")
@click.option("--video", "video_source", help="fer, small:CHECKPOINT or import:FILE")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher-output folder for `liser train --teachers`")
@click.option("--detector", default="opencv", show_default=True, help="face detector for the video teacher (prealigned for synthetic faces)")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="cache root (default $LISER_CACHE or ~/.cache/liser)")
@click.option("--device", default="cpu", show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def teacher_cache(unlabeled, speech_run, video_source, out_dir, detector, cache_dir, device, quiet) -> None:
    """Run the teachers over the unlabeled clips once and write the files the trainer reads."""
    from liser.corpora import load_corpus
    from liser.teachers.pipeline import cache_speech_outputs, cache_video_outputs
    from liser.teachers.speech import TeacherError

    if not speech_run and not video_source:
        _fail("give --speech RUN_DIR and/or --video SOURCE")
    try:
        corpus = load_corpus(unlabeled)
        if speech_run:
            for fold, run in cache_speech_outputs(corpus, speech_run, out_dir, cache_dir=cache_dir, device=device, progress=not quiet).items():
                click.echo(f"speech fold {fold}: ran on {run.computed} clips, {run.cached} from cache, {len(run.skipped)} skipped")
        if video_source:
            path, run = cache_video_outputs(corpus, video_source, out_dir, detector=detector, cache_dir=cache_dir, progress=not quiet)
            if run is not None:
                click.echo(f"video: ran on {run.computed} clips, {run.cached} from cache, {len(run.skipped)} skipped, {run.no_target} without any face window")
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    _report_teachers(out_dir, unlabeled, None)


def _report_teachers(folder: Path, unlabeled: str | None, labeled: str | None) -> None:
    from liser.reports.teachers import report_folder, summary_lines

    try:
        diag, paths = report_folder(folder, unlabeled=unlabeled, labeled=labeled)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
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


def _fit_clip_teachers(kind: str, labeled: str, folds_text: str, fold_file, seed: int, fields: dict, out_dir: Path, device: str, quiet: bool, **kw) -> None:
    """Shared body of `liser teacher prosodic|linguistic fit`: per-fold fits over the students' folds."""
    from liser.corpora import load_corpus
    from liser.folds import load_folds, save_folds
    from liser.teachers.speech import TeacherError
    from liser.train import resolve_device

    try:
        corpus = load_corpus(labeled)
        folds = load_folds(fold_file, corpus.manifest["speaker"].unique()) if fold_file else _make_folds(corpus, 5, seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (out_dir / "folds.json").exists():
            save_folds(folds, out_dir / "folds.json", corpus=corpus.name, manifest_hash=corpus.manifest_hash(), seed=seed)
        picked = _parse_folds(folds_text, len(folds))
        if kind == "prosodic":
            from liser.teachers.prosodic import ProsodicTeacherConfig, fit_prosodic_teachers

            summary = fit_prosodic_teachers(
                corpus, folds, picked, ProsodicTeacherConfig(**fields), out_dir, device=resolve_device(device), progress=not quiet, log=click.echo, **kw
            )
        else:
            from liser.teachers.linguistic import fit_linguistic_teachers, make_config

            summary = fit_linguistic_teachers(corpus, folds, picked, make_config(**fields), out_dir, device=resolve_device(device), progress=not quiet, log=click.echo)
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    for entry in summary["folds"]:
        click.echo(f"fold {entry['fold']}: {kind} teacher val UAR {entry['val_uar']:.3f}  WAR {entry['val_war']:.3f}  (best epoch {entry.get('best_epoch')})")
    click.echo(f"{kind} teachers in {out_dir} ({kind}-foldK.npz); train with: liser train --labeled {labeled} --teachers {out_dir} --config emodistill")


_FOLD_OPTIONS = [
    click.option("--labeled", required=True, help=f"labeled corpus, {CORPUS_SPEC}"),
    click.option("--folds", "folds_text", default="all", show_default=True, help="'all' or e.g. 0,2: one teacher per fold"),
    click.option("--fold-file", type=click.Path(dir_okay=False, path_type=Path), help="the students' fold file (default: the seeded folds `liser train` makes)"),
    click.option("--epochs", type=int, help="at most this many epochs"),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a teacher setting, e.g. --set lr=1e-3"),
    click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher folder (KIND-foldK.npz go here)"),
    click.option("--device", default="auto", show_default=True),
    click.option("--seed", default=0, show_default=True, help="seed of the default folds"),
    click.option("-q", "--quiet", is_flag=True),
]


def _fold_options(f):
    for option in reversed(_FOLD_OPTIONS):
        f = option(f)
    return f


@teacher.group("prosodic")
def teacher_prosodic() -> None:
    """EmoDistill's prosodic teacher: eGeMAPS LLDs (opensmile) into a 4-block 2D ResNet."""


@teacher_prosodic.command("fit")
@_fold_options
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="cache root for the LLDs (default $LISER_CACHE or ~/.cache/liser)")
def teacher_prosodic_fit(labeled, folds_text, fold_file, epochs, overrides, out_dir, device, seed, quiet, cache_dir) -> None:
    """Fit one prosodic teacher per fold (its training speakers only) and write prosodic-foldK.npz."""
    from liser.configs import parse_overrides

    fields = {**parse_overrides(overrides), **({"epochs": epochs} if epochs is not None else {})}
    _fit_clip_teachers("prosodic", labeled, folds_text, fold_file, seed, fields, out_dir, device, quiet, cache_dir=cache_dir)


@teacher.group("linguistic")
def teacher_linguistic() -> None:
    """EmoDistill's linguistic teacher: a BERT-family text classifier on the transcripts."""


@teacher_linguistic.command("fit")
@_fold_options
@click.option("--backbone", default="tiny-text", show_default=True, help="hub id (bert-base-uncased, the paper's), local folder, or tiny-text (offline)")
def teacher_linguistic_fit(labeled, folds_text, fold_file, epochs, overrides, out_dir, device, seed, quiet, backbone) -> None:
    """Fit one linguistic teacher per fold (its training speakers only) and write linguistic-foldK.npz."""
    from liser.configs import parse_overrides

    fields = {"backbone": backbone, **parse_overrides(overrides), **({"epochs": epochs} if epochs is not None else {})}
    _fit_clip_teachers("linguistic", labeled, folds_text, fold_file, seed, fields, out_dir, device, quiet)


@teacher.command("upstream")
@click.option("--source", help="source corpus the upstream model is fitted on, e.g. ravdess:PATH (NSL paper: RAVDESS)")
@click.option("--target", required=True, help="target corpus whose clips the graph joins, e.g. table:PATH (NSL paper: DEMoS)")
@click.option("--teacher", "teacher_dir", type=click.Path(file_okay=False, path_type=Path), help="an already fitted speech teacher folder (skips the fit)")
@click.option("--backbone", default="facebook/hubert-base-ls960", show_default=True, help="hub id, local folder, or tiny-synth (offline stand-in)")
@click.option("--epochs", type=int, help="at most this many epochs of the upstream fit")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a speech-teacher setting")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="teacher folder: upstream.npz goes here")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="cache root (default $LISER_CACHE or ~/.cache/liser)")
@click.option("--device", default="auto", show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def teacher_upstream(source, target, teacher_dir, backbone, epochs, overrides, out_dir, cache_dir, device, quiet) -> None:
    """NSL's upstream model: fit a speech teacher on a source corpus, then embed every target clip.

    \b
    The embedding is the time-mean of the teacher head's projector output (the paper's
    FC-layer output averaged over time). Trials build each fold's graph from it.
    """
    from liser.configs import parse_overrides
    from liser.corpora import load_corpus
    from liser.teachers.speech import TeacherError, make_config
    from liser.teachers.upstream import embed_corpus, fit_upstream
    from liser.train import resolve_device

    if not source and not teacher_dir:
        _fail("give --source NAME:PATH to fit the upstream model, or --teacher DIR to use a fitted one")
    try:
        dev = resolve_device(device)
        tgt = load_corpus(target)
        if teacher_dir is None:
            src = load_corpus(source)
            if src.manifest_hash() == tgt.manifest_hash():
                _fail(f"--source and --target are the same corpus ({source}); NSL transfers from another corpus")
            fields = {"backbone": backbone, **parse_overrides(overrides)}
            if epochs is not None:
                fields["epochs"] = epochs
            teacher_dir = out_dir / "upstream-teacher"
            record = fit_upstream(src, make_config(**fields), teacher_dir, device=dev, progress=not quiet, log=click.echo)
            click.echo(f"upstream model ({src.name}, {len(record['train_speakers'])} speakers): val UAR {record['val_uar']:.3f}")
        outputs, run = embed_corpus(teacher_dir, tgt, out_dir / "upstream.npz", cache_dir=cache_dir, device=dev, progress=not quiet)
    except (TeacherError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    click.echo(
        f"upstream embeddings of {len(outputs)} {tgt.name} clips (dim {outputs.embeddings.shape[1]}): ran on {run.computed}, "
        f"{run.cached} from cache, {len(run.skipped)} skipped -> {out_dir / 'upstream.npz'}"
    )


# ----------------------------------------------------------------------- studies
@main.group()
def study() -> None:
    """Ablation studies: Optuna searches, Ray Tune runs, MLflow logs every fold."""


@study.command("run")
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: the project's store in mlflow/)")
@click.option("--address", envvar="RAY_ADDRESS", help="join an existing Ray cluster, e.g. ray://head:10001 or 127.0.0.1:6379 (default: a local Ray)")
@click.option("--labeled", help="replace the study's labeled corpus, NAME:PATH")
@click.option("--unlabeled", help="replace the study's unlabeled corpus, NAME:PATH")
@click.option("--teachers", help="replace the study's teacher-output folder")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="a fixed setting for every trial, e.g. --set epochs=5")
@click.option("--name", help="run the file under another study name (a separate MLflow experiment)")
@click.option("--smoke", is_flag=True, help="a fast check of the file: 1 epoch, 1 fold, at most 2 trials (study NAME-smoke)")
@click.option("--retry-failed", is_flag=True, help="run trials that failed in an earlier run again")
@click.option("--cpus", type=int, help="CPUs of the local Ray (default: all)")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="feature cache (default $LISER_CACHE or ~/.cache/liser)")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars")
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
        fixed = parse_overrides(overrides)
        study_ = specs.load_study(study_file, labeled=labeled, unlabeled=unlabeled, teachers=teachers, name=name)
        if fixed:
            study_ = specs.Study.model_validate({**study_.model_dump(), "fixed": {**study_.fixed, **fixed}})
            specs.check_trials(study_, study_file)
        if smoke:
            study_ = specs.smoke(study_)
        summary = run_study(
            study_, tracking_uri=tracking_uri, address=address, cache_dir=cache_dir, retry_failed=retry_failed,
            cpus=cpus, progress=not quiet, log=click.echo, where=str(study_file),
        )
    except (specs.StudyError, ValueError) as exc:
        _fail(exc)
    counts = {}
    for t in summary.trials:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    click.echo(f"{summary.study}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" ({summary.seconds:.0f} s)")
    click.echo(f"see it: liser study status {summary.study}   |   liser ui   (MLflow experiment {summary.experiment_id})")


@study.command("status")
@click.argument("name", required=False)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: the project's store in mlflow/)")
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
        _fail(exc)


# ----------------------------------------------------------------------- reports
@main.group("report", invoke_without_command=True)
@click.option("--study", "studies", multiple=True, help="a study (MLflow experiment) name; repeat to combine, e.g. table2-ravdess and table2-cremad")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: the project's store in mlflow/)")
@click.option("--out", "out_dir", default="dashboards", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="file name stem (default: the study names joined with +)")
@click.option("--ui-url", help="MLflow UI address for run links (default: the tracking URI if http, else http://127.0.0.1:5000)")
@click.pass_context
def report(ctx, studies, tracking_uri, out_dir, name, ui_url) -> None:
    """Dashboards from what MLflow holds: tables (HTML, CSV, Markdown, LaTeX) and plots.

    \b
    liser report --study table2-ravdess --study table2-cremad     # Table 2 over both data sets
    liser report fraction-curve --study labeled-fraction           # Figure 2
    """
    ctx.obj = {"tracking_uri": tracking_uri, "out_dir": out_dir, "ui_url": ui_url}
    if ctx.invoked_subcommand:
        return
    if not studies:
        _fail("give --study NAME (`liser study status` lists them)")
    from liser.reports import build_report

    _write_report(build_report, studies, tracking_uri, out_dir, name, ui_url)


@report.command("fraction-curve")
@click.option("--study", "studies", multiple=True, required=True, help="studies whose trials vary labeled_fraction (repeat to add e.g. the full-data study)")
@click.option("--name", help="file name stem (default: the first study)")
@click.option("--tracking-uri", help="MLflow tracking URI (also accepted before fraction-curve)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="output folder (also accepted before fraction-curve; default dashboards)")
@click.option("--ui-url", help="MLflow UI address for run links (also accepted before fraction-curve)")
@click.pass_obj
def report_fraction(obj, studies, name, tracking_uri, out_dir, ui_url) -> None:
    """The labeled-data-fraction curve (paper Figure 2), from logged runs."""
    from liser.reports import build_fraction_curve

    _write_report(
        build_fraction_curve, studies, tracking_uri or obj["tracking_uri"], out_dir or obj["out_dir"], name or studies[0], ui_url or obj["ui_url"]
    )


def _write_report(build, studies, tracking_uri, out_dir, name, ui_url) -> None:
    from liser.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(tracking_uri)
    try:
        written = build(uri, list(studies), out_dir, name=name, ui_url=ui_url)
    except (ValueError, LookupError, FileNotFoundError) as exc:
        _fail(exc)
    for path in written:
        click.echo(f"wrote {path}")
    pages = [p for p in written if p.suffix == ".html"]
    if pages:
        click.echo(f"open {pages[0]} in a browser (it works offline)")


@main.command("demo")
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="where data/synth, mlflow/ and dashboards/ go")
@click.option("--quick", is_flag=True, help="a reduced run (5 actors, 1 epoch, 2 folds) that checks the whole chain in a few minutes")
@click.option("--studies", "studies_dir", type=click.Path(file_okay=False, path_type=Path), help="folder with demo.yaml and demo-fraction.yaml (default: the shipped studies/)")
@click.option("--methods", default="liser", show_default=True, metavar="LIST",
              help="methods to demonstrate: liser, emodistill, nsl, comma-separated, or all (each adds its teachers, a study and a dashboard)")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars")
def demo_cmd(root, quick, studies_dir, methods, quiet) -> None:
    """The whole mission on the built-in synthetic corpus, on a CPU (~15 min on 2 cores).

    \b
    1. generate the synthetic corpus (data/synth)
    2. fit the teachers (tiny HuBERT + LoRA per fold, FER2013 mini-Xception) and cache their outputs
    3. run studies/demo.yaml: Table 2's configurations, distill-ce and two-stage-train
    4. run studies/demo-fraction.yaml: a short labeled-fraction sweep
    5. write dashboards/ from what MLflow holds
    --methods all also fits EmoDistill's teachers and NSL's upstream model and runs
    studies/demo-emodistill.yaml and studies/demo-nsl.yaml (a few more minutes).
    Every step resumes: run it again after a crash or Ctrl-C.
    """
    from dataclasses import replace

    from liser.demo import METHODS, DemoSettings, run_demo
    from liser.studies.spec import StudyError

    named = METHODS if methods.strip() == "all" else tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = sorted(set(named) - set(METHODS))
    if unknown:
        _fail(f"--methods {methods!r}: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)} or all (liser always runs)")
    picked = tuple(m for m in METHODS if m == "liser" or m in named)
    settings = replace(DemoSettings.quick() if quick else DemoSettings(), methods=picked)
    try:
        result = run_demo(root, settings, studies=studies_dir, progress=not quiet, log=click.echo)
    except (StudyError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    click.echo(f"done in {sum(result.seconds.values()) / 60:.1f} min: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
    for path in result.dashboards:
        if path.suffix == ".html":
            click.echo(f"dashboard: {path}")
    click.echo(f"browse every run: liser ui{'' if Path(root).resolve() == Path.cwd() else ' --tracking-uri ' + result.tracking_uri}   (then http://127.0.0.1:5000)")


@main.command("ui")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="store to browse (default: the project's store in mlflow/)")
@click.option("--port", type=int, default=5000, show_default=True, help="0 picks a free port")
@click.option("--telemetry", is_flag=True, help="let the MLflow UI send usage telemetry (off by default)")
def ui_cmd(tracking_uri, port, telemetry) -> None:
    """Start the MLflow UI on 127.0.0.1 over the project's store and print its URL (Ctrl-C stops it)."""
    from liser.ui import start_server, stop_server, study_urls, wait_ready

    try:
        proc, url = start_server(tracking_uri, port=port or None, telemetry=telemetry)
    except ValueError as exc:
        _fail(exc)
    import signal

    def _stop(signum, frame):  # SIGTERM (kill, a supervisor) stops the server too, like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        click.echo(f"starting the MLflow UI on {url} ...")
        wait_ready(url, proc)
        click.echo(f"MLflow UI: {url}   (Ctrl-C to stop)", err=False)
        for name, link in study_urls(tracking_uri, url):
            click.echo(f"  study {name}: {link}")
        proc.wait()
    except (RuntimeError, TimeoutError) as exc:
        _fail(f"{exc}; is port {port} in use? try --port 0")
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(proc)


@main.command("export")
@click.argument("run_id")
@click.option("--onnx", "to_onnx", is_flag=True, help="export to ONNX (the only format so far)")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="store holding the run (default: the project's store in mlflow/)")
@click.option("--out", "out_dir", default="runs/export", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="local folder for the .onnx files, one subfolder per run")
def export_cmd(run_id: str, to_onnx: bool, tracking_uri: str | None, out_dir: Path) -> None:
    """Export the student of a fold run (or of every fold of a trial run) to ONNX.

    The file is checked against PyTorch with onnxruntime, then logged back to the run as
    artifact onnx/student.onnx with metrics onnx_max_abs_diff and onnx_size_bytes.
    """
    if not to_onnx:
        _fail("choose a format: --onnx")
    from liser.export import export_run
    from liser.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(tracking_uri)
    try:
        summary = export_run(run_id, uri, out_dir)
    except (LookupError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    for item in summary["exports"]:
        click.echo(f"{item['path']}  {item['size_bytes'] / 1024:.1f} KB  max abs diff {item['max_abs_diff']:.2e}  -> run {item['run_id']} {item['artifact']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
