"""Training and evaluation throughput: liser's trainer against a bare PyTorch loop.

Both sides use the same in-memory log-Mel tensors and the same Student, on the CPU
(or CUDA with --device cuda), in one process. Prints samples/s for each and the
ratio; the ratio shows the trainer's overhead (cropping, sampling, bookkeeping).

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
from liser.constants import CROP_FRAMES, N_MELS
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


def bare_train(model, crops: list[np.ndarray], labels: np.ndarray, batch: int, device) -> float:
    """Samples/s of the plainest loop: pre-cut crops, AdamW, CE."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x_all = torch.from_numpy(np.stack(crops)).to(device)
    y_all = torch.from_numpy(labels).long().to(device)
    model.train()
    t0 = time.perf_counter()
    for lo in range(0, len(crops), batch):
        loss = torch.nn.functional.cross_entropy(model(x_all[lo : lo + batch]).sup, y_all[lo : lo + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return len(crops) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="NAME:PATH of a labeled corpus (default: random features)")
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    set_threads()
    device = torch.device(args.device)
    data = load_corpus_data(args.corpus, progress=False) if args.corpus else random_corpus(args.clips)
    speakers = data.table["speaker"].unique()
    fold = make_folds(speakers, 5, seed=0)[0]
    cfg = make_config("no-dstl", epochs=args.epochs)

    result = train_fold(cfg, data, fold, device=device, progress=False)
    train_rows = [h for h in result.history if h["stage"] == "train"]
    n_train = result.counts["train"]
    liser_train = n_train * len(train_rows) / sum(h["train_seconds"] for h in train_rows)

    table = data.table[data.table["speaker"].isin(fold.train)]
    rng = np.random.default_rng(0)
    feats = [data.features.features[c] for c in table["clip_id"]]
    crops = [random_crop(f, rng) for f in feats]
    torch.manual_seed(0)
    bare = np.median([bare_train(Student(len(data.corpus.classes)).to(device), crops, table["label_index"].to_numpy(), cfg.batch_size, device) for _ in range(args.epochs)])

    model = Student(len(data.corpus.classes)).to(device).eval()
    n_windows = sum(len(window_starts(f.shape[1])) for f in feats)
    t0 = time.perf_counter()
    predict_logits(model, feats, device)
    liser_eval = n_windows / (time.perf_counter() - t0)
    windows = torch.from_numpy(np.stack([fit_frames(f, s) for f in feats for s in window_starts(f.shape[1])])).to(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(windows), 256):
            model(windows[lo : lo + 256])
    bare_eval = n_windows / (time.perf_counter() - t0)

    print(f"device {device}, torch threads {torch.get_num_threads()}, {n_train} training clips, {n_windows} eval windows")
    print(f"training   liser {liser_train:8.1f} samples/s   bare loop {bare:8.1f} samples/s   ratio {liser_train / bare:.2f}")
    print(f"evaluation liser {liser_eval:8.1f} windows/s   bare loop {bare_eval:8.1f} windows/s   ratio {liser_eval / bare_eval:.2f}")


if __name__ == "__main__":
    main()
