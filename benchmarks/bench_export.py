"""Per-clip CPU latency of the student: onnxruntime on the exported file against PyTorch.

One 3 s log-Mel window (64 x 94) at batch 1, timed call by call after a warm-up, with
1 thread and with each runtime's default thread count. Prints a Markdown table of the
median and p90 in milliseconds. Random weights unless --checkpoint names a student.pt.

    python benchmarks/bench_export.py
    python benchmarks/bench_export.py --checkpoint runs/no-dstl-ravdess/fold0/student.pt --runs 500
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from liser.constants import CROP_FRAMES, N_MELS
from liser.export import INPUT_NAME, check_equivalence, equivalence_inputs, export_onnx, onnx_session
from liser.model import Student
from liser.train import load_student


def timings(call, runs: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    out = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        out[i] = time.perf_counter() - start
    return out * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="a student.pt (default: random weights)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()

    model = load_student(args.checkpoint)[0] if args.checkpoint else Student().eval()
    n_mels = model.config["n_mels"] if args.checkpoint else N_MELS
    x = torch.randn(1, n_mels, CROP_FRAMES) * 20 - 60
    default_threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "student.onnx", n_mels=n_mels)
        diff = check_equivalence(model, path, equivalence_inputs(n_mels))
        size_kb = path.stat().st_size / 1024
        for threads in (1, default_threads):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                t = timings(lambda: model(x), args.runs, args.warmup)
            rows.append(("torch", threads, t))
            session = onnx_session(path, threads=1 if threads == 1 else None)  # None: onnxruntime's default
            feed = {INPUT_NAME: x.numpy()}
            rows.append(("onnxruntime", threads, timings(lambda: session.run(None, feed), args.runs, args.warmup)))
        torch.set_num_threads(default_threads)

    print(f"student.onnx: {size_kb:.1f} KB, max abs diff vs torch {diff:.1e}; batch 1, {n_mels}x{CROP_FRAMES} log-Mel (3 s), {args.runs} runs")
    print(f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, {default_threads} default threads\n")
    print("| runtime | threads | median ms | p90 ms |")
    print("|---|---|---|---|")
    for name, threads, t in rows:
        label = f"{threads}" if threads == 1 else f"{threads} (default)"
        print(f"| {name} | {label} | {np.median(t):.2f} | {np.percentile(t, 90):.2f} |")


if __name__ == "__main__":
    main()
