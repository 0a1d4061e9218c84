"""`liser demo`: the whole mission on the built-in synthetic corpus, on a CPU.

corpus -> teachers (tiny HuBERT + LoRA per fold; the small DFER fitted on the synthetic
labeled face videos, the FERV39k stand-in) -> teacher-output cache -> ``studies/demo.yaml`` and ``studies/demo-fraction.yaml`` on Ray,
logged to MLflow -> dashboards read back from MLflow.

Every step is resumable: the corpus and the fitted teachers are reused when their
settings match, the teacher cache is content-addressed, and the studies resume.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import liser
from liser.storage import write_text_atomic

STUDY_FILES = ("demo.yaml", "demo-fraction.yaml")
METHODS = ("liser", "emodistill", "nsl")
METHOD_STUDIES = {"emodistill": "demo-emodistill.yaml", "nsl": "demo-nsl.yaml"}
FACE_DETECTOR = "synthetic"  # the unlabeled clips' faces, cut where the generator drew them
# The default demo's configurations of demo.yaml: Table 2's. ``--full`` adds Table 3's
# distill-ce and two-stage-train (about 6 more minutes on 2 cores, README).
TABLE2 = ("no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl", "conf-vid-sp-dstl")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; :meth:`quick` is the reduced mode the tests run to the end."""

    actors: int = 10
    unlabeled_clips: int = 300  # the teacher stage and each distilling epoch grow with it (README)
    teacher_epochs: int = 6  # EmoDistill's and NSL's teachers
    speech_epochs: int = 6  # LiSER's speech teachers, on 0.5 s speech crops from the pretrained emotion head (README)
    face_videos: int = 420  # labeled face videos the small DFER video teacher is fitted on
    dfer_epochs: int = 20  # with 12 windows per clip; 30 scored 0.900 held-out-people UAR, 20 fits the demo's budget (README)
    epochs: int | None = None  # None: the study files' own
    folds: tuple[int, ...] | None = None  # None: the study files' own
    fractions: tuple[float, ...] | None = None  # None: demo-fraction.yaml's own
    configurations: tuple[str, ...] | None = TABLE2  # None: all of demo.yaml's (``--full``)
    methods: tuple[str, ...] = ("liser",)  # add "emodistill" and/or "nsl" for their teachers and studies
    method_trials: int | None = None  # None: every trial of the EmoDistill and NSL demo studies
    seed: int = 0

    @classmethod
    def full(cls) -> "DemoSettings":
        """Every configuration of demo.yaml: Table 3's as well as Table 2's."""
        return cls(configurations=None)

    @classmethod
    def quick(cls) -> "DemoSettings":
        return cls(actors=5, unlabeled_clips=8, teacher_epochs=1, speech_epochs=1, face_videos=14, dfer_epochs=1, epochs=1, folds=(0, 1),
                   fractions=(0.5,), configurations=("no-dstl", "vid-sp-dstl", "distill-ce", "two-stage-train"),
                   method_trials=2)


@dataclass
class DemoResult:
    root: Path
    tracking_uri: str
    dashboards: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def studies_dir() -> Path:
    """The shipped ``studies/`` folder next to the package (a source checkout or editable install)."""
    here = Path(liser.__file__).resolve().parents[1] / "studies"
    if not (here / STUDY_FILES[0]).exists():
        raise FileNotFoundError(f"{here}: the shipped study files are not there; run from a liser checkout or pass --studies DIR")
    return here


def _corpus(root: Path, s: DemoSettings, log) -> Path:
    from liser.synth import generate
    from liser.synth.face_videos import generate_face_videos

    synth = root / "data" / "synth"
    marker = synth / "demo-corpus.json"
    cremad = s.actors if "nsl" in s.methods else 0  # NSL's target corpus
    want = {"actors": s.actors, "unlabeled_clips": s.unlabeled_clips, "face_videos": s.face_videos, "seed": s.seed, "version": 4}
    have = json.loads(marker.read_text()) if marker.exists() else {}
    if {k: v for k, v in have.items() if k != "cremad_actors"} == want and have.get("cremad_actors", 0) >= cremad:
        log(f"[1/5] corpus: reusing {synth}")
        return synth
    log(f"[1/5] corpus: writing {s.actors} RAVDESS-layout actors and {s.unlabeled_clips} audio-visual clips to {synth}")
    generate(synth, actors=s.actors, unlabeled_clips=s.unlabeled_clips, seed=s.seed, workers=2, cremad_actors=cremad, progress=True)
    generate_face_videos(synth / "face-videos", n_clips=s.face_videos, seed=s.seed)
    shutil.rmtree(synth / "video-teacher", ignore_errors=True)  # fitted on the videos just replaced
    want["cremad_actors"] = cremad
    write_text_atomic(marker, json.dumps(want))  # a crash mid-write must not leave a marker that fails to parse
    return synth


def _teachers(synth: Path, folds: list[int], s: DemoSettings, progress: bool, log) -> Path:
    """The teachers in two lanes of one core each, then their diagnosis.

    Speech (a spawned process): the tiny-synth backbone, one teacher per fold (only the folds
    the studies use), their outputs over the unlabeled clips, then the unlabeled clips' face
    crops into the shared face store (the video lane is the longer one). Video (here): the
    small DFER, its outputs. Each lane runs one torch thread, so its numbers do not depend on
    which lane ends first; two DFER threads beside a busy core run an epoch about twice as slow
    as one (``benchmarks/bench_dfer.py``).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from liser.corpora import load_corpus
    from liser.reports.teachers import report_folder, summary_lines
    from liser.teachers.fitting import torch_threads
    from liser.teachers.pipeline import cache_video_outputs

    out = synth / "teachers"
    log("[2/5] teachers: speech (backbone, a teacher per fold, outputs) in a second process beside video (the small DFER, outputs)")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        lane = (synth, tuple(folds), s)
        speech = pool.submit(_speech_lane, *lane)
        dfer = _video_teacher(synth, s, progress, log)
        with torch_threads(1):
            cache_video_outputs(load_corpus(f"avclips:{synth / 'avclips'}"), f"small:{dfer}", out, detector=FACE_DETECTOR, progress=progress)
        if not speech.done():
            log("      video lane done; waiting for the speech lane")
        for line in lane_result(speech, lambda: _speech_lane(*lane), log):
            log(f"      {line}")
    diag, paths = report_folder(out, unlabeled=f"avclips:{synth / 'avclips'}", labeled=f"ravdess:{synth / 'ravdess'}")
    for line in summary_lines(diag):
        log(f"      {line}")
    log(f"      teacher diagnosis: {paths[0]}")
    return out


def lane_result(future, rerun: Callable[[], list[str]], log) -> list[str]:
    """A lane's log lines; where its process died (killed, out of memory) rather than raised,
    the lane runs again here, reusing what it finished (every step skips what is on disk)."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()  # a lane that raised raises here, as it would inline
    except BrokenProcessPool:
        log("      the speech lane's process ended abruptly; running it again here (its finished work is reused)")
        return rerun()


def _speech_lane(synth: Path, folds: tuple[int, ...], s: DemoSettings) -> list[str]:
    """The speech lane of :func:`_teachers` on one thread; returns its log lines (no bars: the video lane has the terminal)."""
    from liser.corpora import load_corpus
    from liser.folds import resolve_folds, save_folds
    from liser.teachers.faces import FaceStore, extract_corpus_faces
    from liser.teachers.fitting import torch_threads
    from liser.teachers.pipeline import cache_speech_outputs
    from liser.teachers.speech import fit_speech_teachers, make_config
    from liser.teachers.tiny_synth import DEFAULT_TINY_SYNTH, TINY_SYNTH, tiny_synth_built

    with torch_threads(1):  # scoped: a lane rerun in the demo's process leaves its threads as they were
        started = time.time()
        lines = [] if tiny_synth_built() else [f"speech: building the {TINY_SYNTH} backbone ({DEFAULT_TINY_SYNTH.steps} steps)"]
        cfg = make_config(backbone=TINY_SYNTH, epochs=s.speech_epochs, threads=1)
        labeled = load_corpus(f"ravdess:{synth / 'ravdess'}")
        speech_dir = synth / "speech-teachers"
        all_folds = resolve_folds(labeled.manifest)  # the folds the studies make (the seeded default)
        speech_dir.mkdir(parents=True, exist_ok=True)
        save_folds(all_folds, speech_dir / "folds.json", corpus=labeled.name, manifest_hash=labeled.manifest_hash(), seed=0)
        fit_speech_teachers(labeled, all_folds, list(folds), cfg, speech_dir, progress=False, log=lambda m: lines.append(f"speech: {m}"))
        unlabeled = load_corpus(f"avclips:{synth / 'avclips'}")
        cache_speech_outputs(unlabeled, speech_dir, synth / "teachers", progress=False)
        lines.append(f"speech: outputs over the unlabeled clips cached ({time.time() - started:.0f} s)")
        # the store cache_video_outputs reads (its VideoOutputs builds the same one), so the video lane finds every face
        faces = extract_corpus_faces(unlabeled, FaceStore(detector=FACE_DETECTOR), progress=False)
        lines.append(f"speech lane: the unlabeled clips' faces stored for the video lane ({faces.get('computed', 0)} computed; {time.time() - started:.0f} s in this lane)")
    return lines


def _video_teacher(synth: Path, s: DemoSettings, progress: bool, log) -> Path:
    """The small DFER fitted on the synthetic labeled face videos (reused when its settings match).

    On the drawn faces, the FER2013 mini-Xception (the default for real faces) is right on
    few clips (README, "The demo's teachers on the clips they teach on"); a DFER fitted on the corpus's
    FERV39k stand-in is what a user would do with FERV39k itself.
    """
    from liser.teachers.small_dfer import fit_small_dfer, fitted_with, make_dfer_config

    path = synth / "video-teacher" / "small-dfer"
    cfg = make_dfer_config(epochs=s.dfer_epochs, detector="prealigned", threads=1)  # one thread: weights independent of the other lane
    if fitted_with(path, cfg, s.face_videos):
        log(f"      reusing the small DFER video teacher {path}")
        return path
    log(f"      fitting the small DFER video teacher on {s.face_videos} labeled face videos ({s.dfer_epochs} epochs)")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = fit_small_dfer(synth / "face-videos", path, cfg, progress=progress)
    log(f"      small DFER: val UAR {record['val_uar']:.3f} on held-out people")
    return path


def _emodistill_teachers(synth: Path, folds: list[int], s: DemoSettings, progress: bool, log) -> Path:
    """EmoDistill's two teachers per fold on the transcribed corpus: small enough for a CPU demo."""
    from liser.corpora import load_corpus
    from liser.folds import resolve_folds
    from liser.teachers.linguistic import fit_linguistic_teachers
    from liser.teachers.linguistic import make_config as linguistic_config
    from liser.teachers.prosodic import ProsodicTeacherConfig, fit_prosodic_teachers

    corpus = load_corpus(f"table:{synth / 'transcribed.csv'}")
    out = synth / "emodistill-teachers"
    all_folds = resolve_folds(corpus.manifest)
    log(f"      EmoDistill teachers for folds {folds}: eGeMAPS ResNet (opensmile LLDs) and tiny BERT on the transcripts")
    prosodic = ProsodicTeacherConfig(epochs=2 * s.teacher_epochs, channels=(8, 16, 32, 64), embedding=64, crop_frames=150, threads=1)
    fit_prosodic_teachers(corpus, all_folds, folds, prosodic, out, progress=progress, log=lambda m: log("      " + m))
    fit_linguistic_teachers(corpus, all_folds, folds, linguistic_config(epochs=2 * s.teacher_epochs, threads=1), out, progress=progress, log=lambda m: log("      " + m))
    return out


def _nsl_teachers(synth: Path, s: DemoSettings, progress: bool, log) -> Path:
    """NSL's upstream model, fitted on the RAVDESS-layout actors, embedding the CREMA-D-layout clips."""
    from liser.corpora import load_corpus
    from liser.teachers.speech import make_config
    from liser.teachers.tiny_synth import TINY_SYNTH
    from liser.teachers.upstream import embed_corpus, fit_upstream

    source, target = load_corpus(f"ravdess:{synth / 'ravdess'}"), load_corpus(f"cremad:{synth / 'cremad'}")
    out = synth / "nsl-teachers"
    cfg = make_config(backbone=TINY_SYNTH, epochs=s.teacher_epochs, threads=2)
    fit_upstream(source, cfg, out / "upstream-teacher", progress=progress, log=lambda m: log("      NSL " + m))
    outputs, _ = embed_corpus(out / "upstream-teacher", target, out / "upstream.npz", progress=progress)
    log(f"      NSL upstream: {len(outputs)} target clips embedded (dim {outputs.embeddings.shape[1]})")
    return out


def _study(path: Path, synth: Path, teachers: Path, s: DemoSettings, *, fraction: bool, labeled: str | None = None):
    from liser.studies.spec import Study, check_trials, load_study

    if labeled is None:
        study = load_study(path, labeled=f"ravdess:{synth / 'ravdess'}", unlabeled=f"avclips:{synth / 'avclips'}", teachers=str(teachers))
    else:  # EmoDistill and NSL studies: their own corpus, no unlabeled one
        study = load_study(path, labeled=labeled, teachers=str(teachers))
    data = study.model_dump()
    if s.epochs is not None:
        data["fixed"] = {**data["fixed"], "epochs": s.epochs}
    if s.folds is not None:
        data["folds"] = {**data["folds"], "use": list(s.folds)}
    if fraction and s.fractions is not None:
        data["grid"] = {**data["grid"], "labeled_fraction": list(s.fractions)}
    if not fraction and labeled is None and s.configurations is not None:
        data["configurations"] = list(s.configurations)
    if labeled is not None and s.method_trials is not None:  # the first and last rows of a method's study
        idx = study.subset if study.subset is not None else list(range(len(study.points())))
        data["subset"] = sorted({idx[0], idx[-1]})[: s.method_trials]
    study = Study.model_validate(data)
    check_trials(study, path)
    return study


def run_demo(
    root: str | Path = ".",
    settings: DemoSettings | None = None,
    *,
    studies: str | Path | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run every step under ``root`` (data/synth, mlflow/, dashboards/) and return where it all is."""
    from liser.reports import answer_lines, build_fraction_curve, build_report
    from liser import tracking
    from liser.studies.runner import run_side_by_side, run_study

    s = settings or DemoSettings()
    root = Path(root).resolve()
    files = Path(studies) if studies else studies_dir()
    uri, _ = tracking.resolve_tracking_uri(tracking_uri, root)
    result = DemoResult(root, uri)
    clock = time.time()

    def lap(name: str) -> None:
        nonlocal clock
        result.seconds[name] = round(time.time() - clock, 1)
        clock = time.time()

    synth = _corpus(root, s, log)
    lap("corpus")
    specs = [_study(files / STUDY_FILES[0], synth, synth / "teachers", s, fraction=False),
             _study(files / STUDY_FILES[1], synth, synth / "teachers", s, fraction=True)]
    folds = sorted({k for st in specs for k in st.fold_indices(5)})
    _teachers(synth, folds, s, progress, log)
    extra = []
    if "emodistill" in s.methods:
        t = _emodistill_teachers(synth, folds, s, progress, log)
        extra.append(_study(files / METHOD_STUDIES["emodistill"], synth, t, s, fraction=False, labeled=f"table:{synth / 'transcribed.csv'}"))
    if "nsl" in s.methods:
        t = _nsl_teachers(synth, s, progress, log)
        extra.append(_study(files / METHOD_STUDIES["nsl"], synth, t, s, fraction=False, labeled=f"cremad:{synth / 'cremad'}"))
    lap("teachers")
    log("[3/5] studies " + " and ".join(f"{st.name} ({len(st.points())} trials x {len(st.fold_indices(5))} folds)" for st in specs) + " side by side on one local Ray")
    run_side_by_side(specs, where=[str(files / f) for f in STUDY_FILES], tracking_uri=uri, root=root, progress=progress,
                     log=lambda m: log("      " + m))
    lap("studies")
    for study in extra:
        log(f"[4/5] study {study.name}: {len(study.points())} trials x {len(study.fold_indices(5))} folds on a local Ray")
        run_study(study, tracking_uri=uri, root=root, progress=progress, log=lambda m: log("      " + m), where=study.name)
        lap(study.name)
    log("[5/5] dashboards from what MLflow holds")
    out = root / "dashboards"
    result.dashboards += build_report(uri, [specs[0].name], out)
    result.dashboards += build_fraction_curve(uri, [specs[1].name, specs[0].name], out, name=specs[0].name)
    for study in extra:
        result.dashboards += build_report(uri, [study.name], out)
    lap("reports")
    for line in answer_lines(uri, [specs[0].name]):
        log(line)
    write_text_atomic(out / "demo-timings.json", json.dumps({"settings": asdict(s), "seconds": result.seconds}, indent=1, default=list))
    return result


__all__ = ["DemoSettings", "DemoResult", "run_demo", "studies_dir"]
