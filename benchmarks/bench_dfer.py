"""The small DFER's training step: memory layout and torch threads, alone and beside a busy core.

The demo fits the small DFER while a second process builds the speech backbone and fits
the speech teachers on the other core. This measures one training epoch's time (the
demo's 336 training videos x 12 windows, 4 faces each, batches of 16 windows) from a
slice of steps, for NCHW against channels-last convolutions, at 1 and 2 torch threads,
with the other core idle and with it running a one-thread torch loop (the speech lane's
stand-in). Rounds alternate between the settings; medians are printed.

    python benchmarks/bench_dfer.py                 # 40 drawn face videos, 3 rounds
    python benchmarks/bench_dfer.py --steps 120 --rounds 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from liser.synth.face_videos import generate_face_videos
from liser.teachers.faces import FaceStore
from liser.teachers.small_dfer import SmallDFERNet, face_tracks, read_video_table, train_step, training_windows
from liser.teachers.video import MIN_FACES

DEMO_SAMPLES = 336 * 12  # the demo's training windows per epoch


def _busy(stop) -> None:
    """One torch thread of small matrix products until ``stop`` is set: the other lane."""
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        for _ in range(50):
            a = torch.tanh(a @ a.T / 256)


def epoch_seconds(tracks, labels, *, channels_last: bool, threads: int, steps: int, batch: int = 16) -> float:
    """Seconds one demo epoch takes, from ``steps`` training steps after 5 warm-up steps."""
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = SmallDFERNet(channels_last=channels_last)  # False: the plain NCHW layout before this benchmark
    optim = torch.optim.AdamW(net.parameters(), lr=3e-3)
    samples = training_windows(tracks, range(len(tracks)), 12, MIN_FACES, rng)
    t0, done = 0.0, 0
    for i in range(5 + steps):
        if i == 5:
            t0, done = time.perf_counter(), 0
        train_step(net, optim, tracks, labels, [samples[j] for j in rng.integers(0, len(samples), batch)], 4, rng)
        done += batch
    return (time.perf_counter() - t0) / done * DEMO_SAMPLES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=40, help="drawn face videos to train on (default 40)")
    ap.add_argument("--steps", type=int, default=60, help="timed steps per measurement (default 60)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate_face_videos(Path(tmp) / "fv", n_clips=args.videos, seed=0)
        tracks, labels, _, _ = face_tracks(read_video_table(Path(tmp) / "fv"), FaceStore(Path(tmp) / "faces", detector="prealigned", size=64), MIN_FACES)
    settings = [(layout, threads) for layout in ("nchw", "channels-last") for threads in (1, 2)]
    results: dict[tuple, list[float]] = {}
    for busy in (False, True):
        stop, other = multiprocessing.get_context("spawn").Event(), None
        if busy:
            other = multiprocessing.get_context("spawn").Process(target=_busy, args=(stop,), daemon=True)
            other.start()
            time.sleep(2)
        for _ in range(args.rounds):
            for layout, threads in settings:
                s = epoch_seconds(tracks, labels, channels_last=layout == "channels-last", threads=threads, steps=args.steps)
                results.setdefault((busy, layout, threads), []).append(s)
        if other is not None:
            stop.set()
            other.join()
    print(f"small DFER, one demo epoch ({DEMO_SAMPLES} windows), median of {args.rounds} rounds, {os.cpu_count()} cores:")
    print(f"{'other core':<12}{'layout':<16}{'threads':>8}{'s/epoch':>10}")
    for (busy, layout, threads), values in results.items():
        print(f"{'busy' if busy else 'idle':<12}{layout:<16}{threads:>8}{statistics.median(values):>10.1f}")


if __name__ == "__main__":
    main()
