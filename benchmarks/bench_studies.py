"""Study throughput: trials/hour with 1 vs 2 concurrent trials, and the platform's overhead.

The overhead ratio compares one trial run through the whole platform (Ray Tune + Optuna +
MLflow, in a fresh study) with the same folds trained by calling the trainer directly.

    python benchmarks/bench_studies.py [--actors 5] [--trials 4] [--epochs 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--actors", type=int, default=5)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()

    from liser.data import load_corpus_data
    from liser.folds import make_folds
    from liser.studies.runner import run_study
    from liser.studies.spec import load_study
    from liser.synth import generate
    from liser.train import set_threads, train_fold

    work = Path(tempfile.mkdtemp(prefix="liser-bench-"))
    generate(work / "synth", actors=args.actors, unlabeled_clips=4, video_size=64, workers=2, progress=False)

    def study(name: str, concurrent: int, trials: int) -> Path:
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name, "labeled": f"ravdess:{work / 'synth' / 'ravdess'}", "folds": {"n": 5, "use": [0, 1]},
            "fixed": {"epochs": args.epochs}, "configurations": ["no-dstl"], "grid": {"weight_decay": [0.01 * (i + 1) for i in range(trials)]},
            "resources": {"cpu": 1}, "max_concurrent": concurrent,
        }))
        return path

    rows = []
    for concurrent in (1, 2):
        t0 = time.time()
        run_study(load_study(study(f"c{concurrent}", concurrent, args.trials)), root=work, progress=False, log=lambda _: None)
        seconds = time.time() - t0
        rows.append((concurrent, seconds, args.trials / seconds * 3600))

    t0 = time.time()
    run_study(load_study(study("one", 1, 1)), root=work, progress=False, log=lambda _: None)
    platform = time.time() - t0
    set_threads()
    t0 = time.time()
    data = load_corpus_data(f"ravdess:{work / 'synth' / 'ravdess'}", progress=False)
    folds = make_folds(data.table["speaker"].unique(), 5, 0)
    cfg = load_study(study("one", 1, 1)).resolve({"config": "no-dstl", "weight_decay": 0.01})
    for k in (0, 1):
        train_fold(cfg, data, folds[k], progress=False)
    direct = time.time() - t0

    print(f"synthetic corpus: {args.actors} actors; each trial = 2 folds x {args.epochs} epoch(s), 1 CPU per trial")
    print("| concurrent trials | wall time (s) | trials/hour |")
    print("|---|---|---|")
    for c, s, rate in rows:
        print(f"| {c} | {s:.1f} | {rate:.0f} |")
    print(f"one trial through the platform: {platform:.1f} s; the trainer called directly: {direct:.1f} s; overhead ratio {platform / direct:.2f}")


if __name__ == "__main__":
    main()
