"""Training and evaluation throughput: liser's trainer against a bare PyTorch loop.

Both sides use the same in-memory log-Mel tensors and the same Student, on the CPU
(or CUDA with --device cuda), in one process. Prints samples/s for each and the
ratio; the ratio shows the trainer's overhead (cropping, sampling, bookkeeping).
The first epoch of each run warms up oneDNN and is left out; rounds alternate
between the two sides and medians are reported. The last line splits an epoch
between training steps and sliding-window validation.

    python benchmarks/bench_training.py                  # random features, 600 clips
    python benchmarks/bench_training.py --corpus ravdess:data/synth/ravdess
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from liser.configs import make_config
from liser.constants import N_MELS
from liser.corpora.manifest import Corpus, make_manifest
from liser.data import CorpusData, load_corpus_data, random_crop
from liser.evaluate import fit_frames, predict_logits, window_starts
from liser.features import FeatureSet
from liser.folds import make_folds
from liser.model import Student
from liser.train import set_threads, train_fold


def random_corpus(n_clips: int, seed: int = 0) -> CorpusData:
    """Clips of 3.2-4 s of random 'log-Mel' with 8 labels over 10 speakers, no files."""
    rng = np.random.default_rng(seed)
    rows, feats = [], {}
    for i in range(n_clips):
        cid = f"clip{i:05d}"
        frames = int(rng.integers(100, 126))
        feats[cid] = (rng.standard_normal((N_MELS, frames)) * 10 - 40).astype(np.float32)
        rows.append(dict(clip_id=cid, path=cid, speaker=f"{i % 10:02d}", label=str(i % 8), label_index=i % 8, duration=frames * 0.032, sample_rate=16000))
    corpus = Corpus("random", None, tuple(map(str, range(8))), make_manifest(rows))
    return CorpusData(corpus, FeatureSet(feats, pd.DataFrame(columns=["path", "reason"])))


def bare_epochs(model, crops: list[np.ndarray], labels: np.ndarray, batch: int, epochs: int, device) -> list[float]:
    """Samples/s per epoch of the plainest loop: pre-cut crops, AdamW, CE, no validation."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x_all = torch.from_numpy(np.stack(crops)).to(device)
    y_all = torch.from_numpy(np.asarray(labels)).long().to(device)
    model.train()
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for lo in range(0, len(crops), batch):
            loss = torch.nn.functional.cross_entropy(model(x_all[lo : lo + batch]).sup, y_all[lo : lo + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        rates.append(len(crops) / (time.perf_counter() - t0))
    return rates


def bare_eval(model, feats: list[np.ndarray], device) -> float:
    """Windows/s of the plainest evaluation: every window pre-cut, batches of 256, BatchNorm unfused."""
    windows = torch.from_numpy(np.stack([fit_frames(f, s) for f in feats for s in window_starts(f.shape[1])])).to(device)
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(windows), 256):
            model(windows[lo : lo + 256])
    return len(windows) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="NAME:PATH of a labeled corpus (default: random features)")
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs per round (after one warm-up epoch)")
    ap.add_argument("--rounds", type=int, default=3, help="liser and bare alternate this many times; medians are reported")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    set_threads()
    device = torch.device(args.device)
    data = load_corpus_data(args.corpus, progress=False) if args.corpus else random_corpus(args.clips)
    fold = make_folds(data.table["speaker"].unique(), 5, seed=0)[0]
    cfg = make_config("no-dstl", epochs=args.epochs + 1)
    table = data.table[data.table["speaker"].isin(fold.train)]
    feats = [data.features.features[c] for c in table["clip_id"]]
    rng = np.random.default_rng(0)
    crops = [random_crop(f, rng) for f in feats]

    liser_rates, bare_rates, train_s, eval_s, n_val = [], [], [], [], 0
    for r in range(args.rounds):  # alternate, so drift in the machine's speed hits both sides alike
        result = train_fold(cfg.model_copy(update={"seed": r}), data, fold, device=device, progress=False)
        rows = [h for h in result.history if h["stage"] == "train"][1:]  # epoch 1 warms up oneDNN
        liser_rates += [result.counts["train"] / h["train_seconds"] for h in rows]
        train_s += [h["train_seconds"] for h in rows]
        eval_s += [h["eval_seconds"] for h in rows]
        n_val = result.counts["val"]
        torch.manual_seed(r)
        bare_rates += bare_epochs(Student(len(data.corpus.classes)).to(device), crops, table["label_index"].to_numpy(), cfg.batch_size, args.epochs + 1, device)[1:]

    model = Student(len(data.corpus.classes)).to(device)
    n_windows = sum(len(window_starts(f.shape[1])) for f in feats)
    predict_logits(model, feats[:8], device)  # warm-up
    liser_eval, plain_eval = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        predict_logits(model, feats, device)
        liser_eval.append(n_windows / (time.perf_counter() - t0))
        plain_eval.append(bare_eval(model, feats, device))

    liser, bare = float(np.median(liser_rates)), float(np.median(bare_rates))
    tr, ev = float(np.median(train_s)), float(np.median(eval_s))
    print(f"device {device}, torch threads {torch.get_num_threads()}, {len(table)} training clips, {n_windows} eval windows, "
          f"{args.rounds} rounds x {args.epochs} epochs")
    print(f"training   liser {liser:8.1f} samples/s   bare loop {bare:8.1f} samples/s   ratio {liser / bare:.2f}")
    print(f"evaluation liser {np.median(liser_eval):8.1f} windows/s   bare loop {np.median(plain_eval):8.1f} windows/s   ratio {np.median(liser_eval) / np.median(plain_eval):.2f}")
    print(f"one epoch  {tr + ev:.2f} s: training steps {tr:.2f} s ({tr / (tr + ev):.0%}), validation on {n_val} clips {ev:.2f} s ({ev / (tr + ev):.0%})")


if __name__ == "__main__":
    main()
