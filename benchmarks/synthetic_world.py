"""Does knowledge transfer in the synthetic world? Two measurements, with their targets (issue 11 B).

1. **The shift.** A `no-dstl` student trained on the acted clips (labeled fraction 1) is scored on
   the unlabeled clips' speech against the hidden truth (`avclips_truth.csv`, used here for
   scoring only), next to its in-domain test UAR. Target: >= 0.30 UAR on the unlabeled clips,
   >= 60 % of the in-domain test UAR, yet below it (the shift stays real). The student's
   predicted-class shares show what it reads the clips as.
2. **Distillation with the oracle teachers.** `no-dstl`, `vid-sp-dstl` and `conf-vid-sp-dstl`
   (lambda = 1) with the corpus's noisy oracle teachers (`oracle-teachers/`), at labeled fractions
   0.25, 0.5 and 1.0, over 5 folds, with the Nadeau-Bengio corrected p-value. Targets: each
   distillation configuration above no-dstl at every fraction in >= 4 of 5 folds; and oracle
   distillation at 0.5 of the labels >= no-dstl at all of them (mean test UAR; paper Figure 2).

Every training is the real `train_fold` (what `liser train` runs), best epoch on the fold's
validation speakers. Results are appended to ``OUT/results.jsonl`` as they finish, so a rerun
with the same ``--out`` resumes. ``--legacy`` generates the unlabeled clips with the generator's
earlier conversation style (`LEGACY_STYLE`) to show the diagnosis.

    python benchmarks/synthetic_world.py [--out DIR] [--actors 10] [--unlabeled 600] [--epochs 30]
        [--folds 0,1,2,3,4] [--fractions 0.25,0.5,1.0] [--epoch-over augmented|labeled] [--workers 2]
        [--shift-only] [--legacy]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CONFIGS = ("no-dstl", "vid-sp-dstl", "conf-vid-sp-dstl")
_STATE: dict = {}  # per worker process: the loaded corpora and teachers


def _load(synth: str, cache: str) -> None:
    """Load the corpora, oracle teachers and folds once per worker (features come from the cache)."""
    os.environ["LISER_CACHE"] = cache
    import torch

    from liser.data import load_corpus_data
    from liser.folds import make_folds
    from liser.targets import TeacherOutputs

    torch.set_num_threads(1)
    labeled = load_corpus_data(f"ravdess:{synth}/ravdess", cache, progress=False)
    unlabeled = load_corpus_data(f"avclips:{synth}/avclips", cache, progress=False)
    m = labeled.corpus.manifest
    folds = make_folds(m["speaker"].unique(), 5, 0, dict(zip(m["speaker"], m["gender"])))
    teachers = {k: TeacherOutputs.load(Path(synth) / "oracle-teachers" / f"{k}.npz") for k in ("speech", "video")}
    truth = pd.read_csv(Path(synth) / "avclips_truth.csv").set_index("clip_id")["emotion"]
    _STATE.update(labeled=labeled, unlabeled=unlabeled, folds=folds, teachers=teachers, truth=truth)


def run_one(job: dict) -> dict:
    """Train one (config, fraction, fold) student; score it on test and on the unlabeled clips' speech."""
    from liser.configs import make_config
    from liser.evaluate import predict_logits
    from liser.teachers.truth import score_calls
    from liser.train import train_fold

    s = _STATE
    t0 = time.perf_counter()
    extra = {"epoch_over": job["epoch_over"]} if job["config"] != "no-dstl" else {}
    cfg = make_config(job["config"], labeled_fraction=job["fraction"], epochs=job["epochs"], **extra)
    fold = s["folds"][job["fold"]]
    r = train_fold(cfg, s["labeled"], fold, s["unlabeled"], s["teachers"], device="cpu", progress=False)
    ids = list(s["unlabeled"].table["clip_id"])
    pred = predict_logits(r.student(), [s["unlabeled"].features.features[c] for c in ids]).argmax(1)
    scores = score_calls(dict(zip(ids, map(int, pred))), s["truth"], s["labeled"].corpus.classes)
    return {
        **job,
        "test_uar": r.test.uar,
        "val_uar": r.val.uar,
        "best_epoch": r.best_epoch,
        "n_train": r.counts["train"],
        "n_test": r.counts["test"],
        "unlabeled_uar": scores["uar"],
        "unlabeled_acc": scores["accuracy"],
        "unlabeled_shares": scores["shares"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _key(job: dict) -> tuple:
    over = "labeled" if job["config"] == "no-dstl" else job.get("epoch_over", "labeled")  # no-dstl has no unlabeled set
    return job["config"], float(job["fraction"]), int(job["fold"]), int(job["epochs"]), over


def run_jobs(jobs: list[dict], out: Path, synth: Path, cache: Path, workers: int, train: bool = True) -> pd.DataFrame:
    """Run the jobs not yet in ``out/results.jsonl`` (in spawned workers: torch does not survive fork)."""
    from tqdm import tqdm

    log = out / "results.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    have = {_key(r) for r in done}
    todo = [j for j in jobs if _key(j) not in have]
    if todo and not train:
        print(f"{len(todo)} of {len(jobs)} trainings are not in {log} yet; the figures below leave them out")
    elif todo:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_load, initargs=(str(synth), str(cache))) as pool, log.open("a") as f:
            futures = [pool.submit(run_one, j) for j in todo]
            for fut in tqdm(as_completed(futures), total=len(futures), desc="trainings", unit="run"):
                row = fut.result()
                f.write(json.dumps(row) + "\n")
                f.flush()
                done.append(row)
    wanted = {_key(j) for j in jobs}
    return pd.DataFrame([r for r in done if _key(r) in wanted])


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report_shift(rows: pd.DataFrame) -> dict:
    base = rows[(rows.config == "no-dstl") & (rows.fraction == 1.0)].sort_values("fold")
    print("\n1. The shift: a no-dstl student (labeled fraction 1) on its test speakers and on the unlabeled clips' speech")
    print(f"{'fold':>6}{'test UAR':>10}{'unlabeled UAR':>15}{'unlabeled acc':>15}   most predicted on unlabeled clips")
    for r in base.itertuples():
        top = sorted(r.unlabeled_shares.items(), key=lambda kv: -kv[1])[:3]
        print(f"{r.fold:>6}{r.test_uar:>10.3f}{r.unlabeled_uar:>15.3f}{r.unlabeled_acc:>15.3f}   " + ", ".join(f"{c} {v:.0%}" for c, v in top))
    test, unl = base.test_uar.mean(), base.unlabeled_uar.mean()
    ratio = unl / test if test else float("nan")
    print(f"{'mean':>6}{test:>10.3f}{unl:>15.3f}{base.unlabeled_acc.mean():>15.3f}   unlabeled / in-domain = {ratio:.0%}")
    checks = {"unlabeled UAR >= 0.30": unl >= 0.30, "unlabeled >= 60 % of in-domain": ratio >= 0.6, "unlabeled < in-domain": unl < test}
    for name, ok in checks.items():
        print(f"   target {name}: {mark(ok)}")
    return {"test_uar": test, "unlabeled_uar": unl, "ratio": ratio, "checks": checks}


def report_distillation(rows: pd.DataFrame, fractions: list[float]) -> dict:
    from liser.reports.stats import corrected_ttest

    print("\n2. Oracle-teacher distillation against no-dstl (test UAR, mean ± sd over folds; wins = folds above no-dstl)")
    print("   (unl. UAR: the same students on the unlabeled clips' speech; best ep.: mean best epoch of the budget)")
    print(f"{'fraction':>9}{'config':>18}{'test UAR':>16}{'unl. UAR':>10}{'best ep.':>9}{'vs no-dstl':>12}{'wins':>7}{'p (NB)':>9}")
    out: dict = {"cells": []}
    all_wins = True
    for frac in fractions:
        base = rows[(rows.config == "no-dstl") & (rows.fraction == frac)].set_index("fold").sort_index()
        for cfg in CONFIGS:
            cur = rows[(rows.config == cfg) & (rows.fraction == frac)].set_index("fold").sort_index()
            if cur.empty:
                print(f"{frac:>9g}{cfg:>18}{'(not run yet)':>16}")
                all_wins = False
                continue
            sd = cur.test_uar.std(ddof=1) if len(cur) > 1 else 0.0
            line = f"{frac:>9g}{cfg:>18}{cur.test_uar.mean():>10.3f} ± {sd:.3f}{cur.unlabeled_uar.mean():>10.3f}{cur.best_epoch.mean():>9.1f}"
            if cfg == "no-dstl":
                print(line)
                continue
            both = cur.index.intersection(base.index)
            a, b = cur.loc[both, "test_uar"].to_numpy(), base.loc[both, "test_uar"].to_numpy()
            ratio = float((cur.loc[both, "n_test"] / cur.loc[both, "n_train"]).mean())
            t = corrected_ttest(a, b, ratio)
            wins = int(np.sum(a > b))
            need = max(len(both) - 1, 1) if len(both) >= 5 else len(both)
            all_wins &= wins >= need
            print(f"{line}{a.mean() - b.mean():>+12.3f}{f'{wins}/{len(both)}':>7}{t.p:>9.3f}")
            out["cells"].append({"fraction": frac, "config": cfg, "mean": float(a.mean()), "diff": float(a.mean() - b.mean()), "wins": wins, "n": len(both), "p": t.p})
    print(f"   target distillation above no-dstl in >= 4 of 5 folds at every fraction: {mark(all_wins)}")
    out["wins_target"] = bool(all_wins)
    if 0.5 in fractions:
        best_half = max(rows[(rows.config == c) & (rows.fraction == 0.5)].test_uar.mean() for c in CONFIGS[1:])
        full = rows[(rows.config == "no-dstl") & (rows.fraction == max(fractions))].test_uar.mean()
        ok = best_half >= full
        print(f"   target oracle distillation at 0.5 ({best_half:.3f}) >= no-dstl at {max(fractions):g} ({full:.3f}): {mark(ok)}")
        out["figure2_target"] = bool(ok)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/synthetic-world"), help="working folder (corpus, cache, results.jsonl); reruns resume")
    ap.add_argument("--synth", type=Path, help="an existing `liser data synth` folder (default: generate one under --out)")
    ap.add_argument("--actors", type=int, default=10)
    ap.add_argument("--unlabeled", type=int, default=600, help="unlabeled clips of the generated corpus")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--fractions", default="0.25,0.5,1.0")
    ap.add_argument("--epoch-over", choices=("labeled", "augmented"), default="augmented",
                    help="distillation epochs pass over the labeled clips, or the set augmented with the unlabeled ones (section 3.6)")
    ap.add_argument("--workers", type=int, default=2, help="trainings at once (one CPU thread each)")
    ap.add_argument("--shift-only", action="store_true", help="measurement 1 only (no-dstl at fraction 1)")
    ap.add_argument("--legacy", action="store_true", help="generate the unlabeled clips with the earlier LEGACY_STYLE (diagnosis)")
    ap.add_argument("--report-only", action="store_true", help="print the figures from OUT/results.jsonl as it stands; train nothing")
    args = ap.parse_args()
    out = args.out / ("legacy" if args.legacy else "current")
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    synth = args.synth
    if synth is None:
        from liser.synth import generate
        from liser.synth.conversation import CONVERSATION, LEGACY_STYLE

        synth = out / "synth"
        if not (synth / "avclips_truth.csv").exists():
            print(f"generating the corpus under {synth} ({args.actors} actors, {args.unlabeled} unlabeled clips)")
            summary = generate(synth, actors=args.actors, unlabeled_clips=args.unlabeled, workers=args.workers,
                               style=LEGACY_STYLE if args.legacy else CONVERSATION)
            print(f"oracle teachers' segment accuracy against the truth: {summary['oracle_accuracy']}")
    if not args.report_only:
        _load(str(synth), str(cache))  # featurize once here, so the workers read the cache
    folds = [int(f) for f in args.folds.split(",")]
    fractions = [1.0] if args.shift_only else [float(f) for f in args.fractions.split(",")]
    configs = ("no-dstl",) if args.shift_only else CONFIGS
    jobs = [{"config": c, "fraction": fr, "fold": f, "epochs": args.epochs, "epoch_over": args.epoch_over} for fr in fractions for f in folds for c in configs]
    t0 = time.perf_counter()
    rows = run_jobs(jobs, out, synth, cache, args.workers, train=not args.report_only)
    print(f"\n{len(rows)} trainings of {args.epochs} epochs on {synth} ({time.perf_counter() - t0:.0f} s this run); style: "
          f"{'LEGACY_STYLE' if args.legacy else 'CONVERSATION'}; distillation epochs over the {args.epoch_over} set")
    figures = {"shift": report_shift(rows)}
    if not args.shift_only:
        figures["distillation"] = report_distillation(rows, fractions)
    (out / "figures.json").write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
