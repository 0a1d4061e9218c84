"""The fold-0 speech teacher against the fold-0 `no-dstl` student, on the same validation speakers.

Generates the synthetic corpus (or uses --synth DIR), makes the same seeded, gender-interleaved
folds that `liser train` and `liser teacher speech fit` make, then:

* fits fold 0's speech teacher (`liser teacher speech fit --folds 0`) on the fold's training
  speakers only; its own validation UAR is on an 80/20 split of those speakers' clips;
* trains fold 0's `no-dstl` student (`liser train --config no-dstl --fold 0`) for the largest
  of --student-epochs; its validation UAR is the best epoch's on the fold's validation
  speakers. The trainer keeps no state that depends on the epoch budget (constant learning
  rate, seeded per fold), so the best of the first N epochs is what an N-epoch run reports;
* scores the teacher on the student's validation speakers (which it never trained on) and
  test speakers: per clip, the softmax of its 0.5 s segments averaged (as the trainer uses
  the teacher) and, for reference, one pass over the whole clip (the teacher's own `val_uar`).

The student's validation UAR is optimistic (the epoch is chosen on it); the teacher's is not.

`--recipe KEY=VALUE` changes the tiny-synth backbone's :class:`TinySynthRecipe` (e.g.
`--recipe speakers=128 --recipe crop_seconds=0.5,1.0`), to try build settings without editing
the defaults; the build's report (seconds, final pretraining accuracy) is printed.

    python benchmarks/teacher_vs_student.py [--synth DIR] [--student-epochs 8,20,50] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from liser.audio import load_audio  # noqa: E402
from liser.configs import make_config as make_train_config  # noqa: E402
from liser.configs import parse_overrides  # noqa: E402
from liser.corpora import load_corpus  # noqa: E402
from liser.data import load_corpus_data  # noqa: E402
from liser.evaluate import uar, war  # noqa: E402
from liser.folds import make_folds  # noqa: E402
from liser.teachers import tiny_synth  # noqa: E402
from liser.teachers.speech import SpeechTeacher, fit_speech_teachers, make_config, predict_clips  # noqa: E402
from liser.train import set_threads, train_fold  # noqa: E402


def seeded_folds(corpus, seed: int = 0):
    """The folds `liser train` and `liser teacher speech fit` make by default (genders interleaved)."""
    m = corpus.manifest
    strata = dict(zip(m["speaker"], m["gender"])) if "gender" in m else None
    return make_folds(m["speaker"].unique(), 5, seed, strata)


def recipe_with(overrides: list[str]) -> tiny_synth.TinySynthRecipe:
    """The default tiny-synth recipe with KEY=VALUE overrides (tuples as comma-separated values)."""
    recipe = tiny_synth.DEFAULT_TINY_SYNTH
    kinds = {f.name: type(getattr(recipe, f.name)) for f in fields(recipe)}
    changes = {}
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in kinds:
            raise SystemExit(f"--recipe {item}: unknown key; TinySynthRecipe has {sorted(kinds)}")
        kind = kinds[key]
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise SystemExit(f"--recipe {item}: {key} is true or false")
            changes[key] = value.lower() in ("true", "1")
        else:
            changes[key] = tuple(float(v) for v in value.split(",")) if kind is tuple else kind(value)
    return replace(recipe, **changes)


def score_teacher(teacher: SpeechTeacher, corpus, speakers) -> dict:
    """UAR/WAR of the teacher on every clip of ``speakers``: segment softmaxes averaged, and whole clips."""
    rows = corpus.manifest[corpus.manifest["speaker"].isin(speakers)]
    waves = [load_audio(p) for p in rows["path"]]
    y = rows["label_index"].to_numpy()
    segments = np.asarray([p.mean(0).argmax() for p in teacher.predict_segments_batch(waves)])
    whole = predict_clips(teacher.model, waves, normalize=teacher.normalize, device=teacher.device).argmax(1)
    return {"clips": len(y), "uar": uar(y, segments), "war": war(y, segments), "whole_clip_uar": uar(y, whole)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", type=Path, help="an existing `liser data synth` folder (default: generate one)")
    ap.add_argument("--actors", type=int, default=10, help="actors of the generated corpus")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--backbone", default="tiny-synth", help="the speech teacher's backbone")
    ap.add_argument("--teacher-epochs", type=int, default=50, help="the teacher's maximum epochs (paper: 50)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a teacher setting, as `liser teacher speech fit --set` takes it")
    ap.add_argument("--recipe", action="append", default=[], metavar="KEY=VALUE",
                    help="a tiny-synth TinySynthRecipe setting (tuples comma-separated), instead of the default")
    ap.add_argument("--student-epochs", default="8,20,50", help="epoch budgets to report for the student (8: the demo's; 50: the paper's)")
    ap.add_argument("--no-student", action="store_true", help="fit and score the teacher only")
    ap.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    budgets = sorted({int(e) for e in args.student_epochs.split(",")})
    work = args.out or Path(tempfile.mkdtemp(prefix="liser-tvs-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LISER_CACHE", str(work / "cache"))
    if args.synth is None:
        from liser.synth import generate

        args.synth = work / "synth"
        generate(args.synth, actors=args.actors, unlabeled_clips=0, progress=False)
    spec = f"ravdess:{args.synth / 'ravdess'}"
    corpus = load_corpus(spec)
    fold = seeded_folds(corpus)[args.fold]

    tiny_synth.DEFAULT_TINY_SYNTH = recipe = recipe_with(args.recipe)  # what the "tiny-synth" keyword builds
    t0 = time.perf_counter()
    cfg = make_config(**{"backbone": args.backbone, "epochs": args.teacher_epochs, "threads": 1, **parse_overrides(args.overrides)})
    summary = fit_speech_teachers(corpus, [fold], [fold.index], cfg, work / "speech", progress=False)
    teacher_seconds = time.perf_counter() - t0
    entry = summary["folds"][0]
    assert not set(entry["train_speakers"]) & (set(fold.val) | set(fold.test)), "the teacher trained on held-out speakers"
    teacher = SpeechTeacher.load(work / "speech" / f"fold{fold.index}", threads=1)
    t_val, t_test = score_teacher(teacher, corpus, fold.val), score_teacher(teacher, corpus, fold.test)
    build = None
    if args.backbone == tiny_synth.TINY_SYNTH:
        build = json.loads((Path(entry_source(work, fold)) / "tiny_synth.json").read_text())
        print(f"tiny-synth backbone {recipe.key()}: built in {build['seconds']} s, final pretraining accuracy "
              f"{build['final_train_accuracy']:.3f}, prosody MSE {build['final_prosody_mse']:.3f}; changed: {args.recipe or 'none'}")

    print(f"corpus {args.synth} ({corpus.manifest['speaker'].nunique()} actors), fold {fold.index}: "
          f"train {list(fold.train)}, val {list(fold.val)}, test {list(fold.test)}")
    print(f"teacher ({args.backbone}, best of {cfg.epochs} epochs at {entry['best_epoch']}, "
          f"{teacher_seconds:.0f} s incl. any backbone build): own 20 % split UAR {entry['val_uar']:.3f} "
          f"(0.5 s segments averaged {entry['val_segment_uar']:.3f})")
    print(f"{'':36}{'segments averaged':>18}{'whole clips':>13}")
    print(f"{'teacher on val speakers':36}{t_val['uar']:>18.3f}{t_val['whole_clip_uar']:>13.3f}   ({t_val['clips']} clips)")
    print(f"{'teacher on test speakers':36}{t_test['uar']:>18.3f}{t_test['whole_clip_uar']:>13.3f}   ({t_test['clips']} clips)")
    figures = {"fold": fold.index, "teacher": {"record": entry, "val": t_val, "test": t_test, "seconds": teacher_seconds}, "build": build}
    if not args.no_student:
        figures["student"] = run_student(spec, fold, budgets, t_val)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def entry_source(work: Path, fold) -> str:
    """The backbone folder the fold's teacher was fitted on (from its teacher.json)."""
    return json.loads((work / "speech" / f"fold{fold.index}" / "teacher.json").read_text())["backbone_source"]


def run_student(spec: str, fold, budgets: list[int], t_val: dict) -> dict:
    """Train the fold's no-dstl student for max(budgets) epochs; print its val UAR per budget and the teacher's margin."""
    t0 = time.perf_counter()
    set_threads()
    labeled = load_corpus_data(spec, progress=False)
    result = train_fold(make_train_config("no-dstl", epochs=budgets[-1]), labeled, fold, device="cpu", progress=False)
    student_seconds = time.perf_counter() - t0
    val_curve = [row["val_uar"] for row in result.history]
    students = {n: max(val_curve[:n]) for n in budgets}

    print(f"student no-dstl ({student_seconds:.0f} s for {budgets[-1]} epochs), val UAR = best epoch's on the val speakers:")
    for n, value in students.items():
        margins = f"segments {t_val['uar'] - value:+.3f}, whole clips {t_val['whole_clip_uar'] - value:+.3f}"
        print(f"  {n:>3} epochs: val UAR {value:.3f}   teacher margin: {margins}")
    print(f"  test UAR after {budgets[-1]} epochs (best epoch {result.best_epoch}): {result.test.uar:.3f}")
    return {"val_uar_by_epochs": students, "best_epoch": result.best_epoch, "test_uar": result.test.uar, "val_curve": val_curve}


if __name__ == "__main__":
    main()
