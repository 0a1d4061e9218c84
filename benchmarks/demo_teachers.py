"""The demo's real teachers scored where they teach: on the unlabeled clips, against the hidden truth.

Runs the corpus and teacher steps exactly as `liser demo` runs them (the same functions and
settings: tiny-synth HuBERT + LoRA per fold, the small DFER fitted on the synthetic labeled face
videos), then prints for every teacher-output file its own validation UAR and how often it is
right on the unlabeled clips (`avclips_truth.csv`, read for scoring only; the file's
``hidden_truth`` metadata). For comparison it scores, on the same clips:

* the FER2013 mini-Xception (the default video teacher for real faces) on the drawn faces;
* each fold's `no-dstl` student (`--student-epochs`, default 30), the model the speech teacher
  has to beat there for distillation to make sense.

Targets (issue 11 C): each fold's speech teacher >= 0.40 accuracy and above its no-dstl student;
the small DFER >= 0.70 accuracy against ``ferv_class``.

    python benchmarks/demo_teachers.py [--root runs/demo-teachers] [--unlabeled 100] [--folds 0,1,2]
        [--student-epochs 30] [--no-fer] [--no-students]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

from liser.demo import DemoSettings, _corpus, _teachers  # noqa: E402
from liser.targets import TeacherOutputs  # noqa: E402
from liser.teachers.truth import TRUTH_FILE, score_calls, truth_scores  # noqa: E402


def fmt(scores: dict) -> str:
    if not scores:
        return "no truth"
    return f"acc {scores['accuracy']:.3f}  UAR {scores['uar']:.3f}  ({scores['top_class_share']:.0%} called {scores['top_class']})"


def student_scores(synth: Path, fold: int, epochs: int, truth: pd.Series) -> dict:
    """Train the fold's no-dstl student as `liser train` does and score it on the unlabeled clips' speech."""
    from liser.configs import make_config
    from liser.data import load_corpus_data
    from liser.evaluate import predict_logits
    from liser.folds import folds_for
    from liser.train import set_threads, train_fold

    set_threads()
    labeled = load_corpus_data(f"ravdess:{synth / 'ravdess'}", progress=False)
    unlabeled = load_corpus_data(f"avclips:{synth / 'avclips'}", progress=False)
    folds = folds_for(labeled.corpus.manifest, 5, 0)
    result = train_fold(make_config("no-dstl", epochs=epochs), labeled, folds[fold], device="cpu", progress=False)
    ids = list(unlabeled.table["clip_id"])
    pred = predict_logits(result.student(), [unlabeled.features.features[c] for c in ids]).argmax(1)
    scores = score_calls(dict(zip(ids, map(int, pred))), truth, labeled.corpus.classes)
    return {**scores, "test_uar": result.test.uar}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("runs/demo-teachers"), help="where data/synth goes (reruns reuse it)")
    ap.add_argument("--unlabeled", type=int, default=DemoSettings.unlabeled_clips, help="unlabeled clips (the demo's default)")
    ap.add_argument("--folds", default="0,1,2", help="the folds whose speech teachers are fitted (the demo's)")
    ap.add_argument("--student-epochs", type=int, default=30)
    ap.add_argument("--no-fer", action="store_true", help="skip scoring FER2013 on the drawn faces")
    ap.add_argument("--no-students", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("LISER_CACHE", str(args.root / "cache"))
    folds = [int(f) for f in args.folds.split(",")]
    s = DemoSettings(unlabeled_clips=args.unlabeled)
    t0 = time.perf_counter()
    synth = _corpus(args.root, s, print)
    out = _teachers(synth, folds, s, True, print)
    seconds = time.perf_counter() - t0
    truth = pd.read_csv(synth / TRUTH_FILE)
    figures: dict = {"teachers": {}, "seconds_corpus_and_teachers": round(seconds, 1)}
    print(f"\nteachers on {len(truth)} unlabeled clips (hidden truth: {synth / TRUTH_FILE}); corpus + teachers took {seconds:.0f} s")
    for path in sorted(out.glob("*.npz")):
        o = TeacherOutputs.load(path)
        val = o.meta.get("val_uar")
        scores = o.meta.get("hidden_truth", {})
        figures["teachers"][path.stem] = {"val_uar": val, **scores}
        print(f"  {path.name:18} own val UAR {val if val is None else f'{val:.3f}'}   unlabeled clips: {fmt(scores)}")
    if not args.no_fer:
        from liser.corpora import load_corpus
        from liser.teachers.pipeline import cache_video_outputs

        fer_path, _ = cache_video_outputs(load_corpus(f"avclips:{synth / 'avclips'}"), "fer", args.root / "fer-teacher", detector="synthetic", progress=False)
        scores = truth_scores(TeacherOutputs.load(fer_path), truth)
        figures["fer2013"] = scores
        print(f"  {'FER2013 (fer)':18} on the drawn faces       unlabeled clips: {fmt(scores)}")
    video = figures["teachers"].get("video", {})
    if video:
        print(f"  target small DFER >= 0.70 on the faces: {'met' if video.get('accuracy', 0) >= 0.70 else 'MISSED'}")
    if not args.no_students:
        true = truth.set_index("clip_id")["emotion"].astype(str)
        print(f"\nspeech teachers against their fold's no-dstl student ({args.student_epochs} epochs) on the unlabeled clips' speech")
        for k in folds:
            st = student_scores(synth, k, args.student_epochs, true)
            te = figures["teachers"].get(f"speech-fold{k}", {})
            figures.setdefault("students", {})[k] = st
            ok = te.get("accuracy", 0) >= 0.40 and te.get("accuracy", 0) > st["accuracy"]
            print(f"  fold {k}: teacher {fmt(te)}\n          student {fmt(st)}  (test UAR {st['test_uar']:.3f})   "
                  f"target teacher >= 0.40 and above the student: {'met' if ok else 'MISSED'}")
    (args.root / "demo-teachers.json").write_text(json.dumps(figures, indent=1, default=str))
    print(f"\nfigures written to {args.root / 'demo-teachers.json'}")


if __name__ == "__main__":
    main()
