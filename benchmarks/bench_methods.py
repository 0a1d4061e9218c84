"""Cost of each method and student on the CPU: parameters, a training step, inference per clip.

For every configuration named with --configs: build its student (EmoDistill's heads sized
by stand-in teacher embeddings of 128 and 64), time --steps optimisation steps of its
method's loss on a batch of N_l = 25 random 3 s log-Mel crops (NSL: each with n
neighbours, as the graph gives them), then the median latency of one 3 s clip at batch 1
in eval mode. The papers' on-device claims rest on the last two columns.

    python benchmarks/bench_methods.py [--configs no-dstl,emodistill,nsl-cnn-lstm,cnn6,nsl,hubert-ce] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from liser.configs import make_config
from liser.constants import BATCH_SIZE, CROP_FRAMES, N_MELS
from liser.data import LabeledBatch
from liser.methods import build_model, make_method
from liser.model import count_parameters
from liser.targets import ClipOutputs

K = 8  # RAVDESS's classes


def stand_ins(ids: list[str], rng: np.random.Generator) -> dict[str, ClipOutputs]:
    """Teacher files of the right shapes (their values do not change the cost)."""
    def make(kind: str, d: int) -> ClipOutputs:
        return ClipOutputs.from_rows(kind, [str(i) for i in range(K)], {c: (rng.standard_normal(K), rng.standard_normal(d)) for c in ids})

    return {"prosodic": make("prosodic", 128), "linguistic": make("linguistic", 64), "upstream": make("upstream", 128)}


def bench(name: str, steps: int, rng: np.random.Generator) -> dict:
    cfg = make_config(name, **({"nsl_epsilon": -1.0} if make_config(name).method == "nsl" else {}))  # every clip gets n neighbours
    ids = [f"clip{i}" for i in range(4 * BATCH_SIZE)]
    feats = {c: (rng.standard_normal((N_MELS, CROP_FRAMES)) * 10 - 40).astype(np.float32) for c in ids}
    teachers = {k: t for k, t in stand_ins(ids, rng).items() if k in cfg.teacher_kinds}
    model = build_model(cfg, K, teachers)
    method = make_method(cfg, teachers, ids, feats)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    batch = LabeledBatch(np.stack([feats[c] for c in ids[:BATCH_SIZE]]), rng.integers(0, K, BATCH_SIZE), ids[:BATCH_SIZE])
    times = []
    model.train()
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = method.loss(model, "cpu", batch, None, rng)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step pays one-off allocation costs
            times.append(time.perf_counter() - t0)
    model.eval()
    x = torch.from_numpy(batch.x[:1])
    latency = []
    with torch.no_grad():
        for i in range(21):
            t0 = time.perf_counter()
            model(x)
            if i:
                latency.append(time.perf_counter() - t0)
    return {
        "config": name, "method": cfg.method, "student": cfg.student, "parameters": count_parameters(model),
        "step_ms": 1000 * statistics.median(times), "clip_ms": 1000 * statistics.median(latency),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="no-dstl,emodistill,nsl-cnn-lstm,cnn6,nsl,hubert-ce,emodistill-hubert")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"CPU, {args.threads} thread(s); a step is N_l = {BATCH_SIZE} crops of 3 s (NSL: + 3 neighbours each)")
    print(f"{'config':<20} {'method':<11} {'student':<8} {'parameters':>11} {'train step':>11} {'1 clip (eval)':>14}")
    for name in args.configs.split(","):
        r = bench(name.strip(), args.steps, rng)
        print(f"{r['config']:<20} {r['method']:<11} {r['student']:<8} {r['parameters']:>11,} {r['step_ms']:>9.0f} ms {r['clip_ms']:>11.2f} ms")


if __name__ == "__main__":
    main()
