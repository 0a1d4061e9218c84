"""The per-clip stages on 1 and 2 workers, batched against one clip at a time, and the MSP-Face projection.

Generates a synthetic audio-visual corpus (--clips, 112 px video), fits a tiny-synth
speech teacher for one fold (1 epoch: speed is measured, not quality), starts one local Ray
(its start is timed once), then times every stage from a cold cache three ways: in this
process with all threads (``--workers 1``, what a small job gets), one Ray worker with one
thread, and two Ray workers with one thread each (``--workers 2``). Actors are created (and
load their model) inside each timed job, so each job is timed twice, on the first half of
the clips and on all of them: the difference is the steady rate (clips/s once the workers
are up, what a corpus of thousands of clips sees) and the rest is the job's fixed cost
(actor start and model load). Where the second half took under MIN_SPLIT_S the difference
is timer noise, so the steady rate is the cold one (marked ``*``). The scaling figure is 2
workers against 1 at the steady rate.

- decoding + log-Mel features, DeepFace face extraction (opencv), the speech teacher's
  0.5 s segment outputs and the FER video teacher's 16-frame window outputs;
- the speech teacher one clip at a time (the loop before batching) against batches of 8 clips;
- Ray's fixed cost: a 20-clip features job on 2 workers against the same in this process.

From the steady rates it projects the paper's MSP-Face subset (46.55 h, 5.0 M frames at
30 fps, 5 fold speech teachers) on this machine, and per added worker at the measured
2-worker efficiency.

    python benchmarks/bench_workers.py [--clips 96]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from liser.corpora import load_corpus  # noqa: E402
from liser.features import featurize  # noqa: E402
from liser.folds import make_folds  # noqa: E402
from liser.teachers.faces import FaceStore, extract_corpus_faces  # noqa: E402
from liser.teachers.pipeline import cache_speech_outputs, cache_video_outputs  # noqa: E402
from liser.teachers.speech import fit_speech_teachers, make_config  # noqa: E402
from liser.workers import Pool  # noqa: E402

MSP_SECONDS, MSP_FRAMES, MSP_FOLDS = 46.55 * 3600, 5.0e6, 5


MIN_SPLIT_S = 3.0  # a second half shorter than this measures noise, not a rate


def split_rates(n: int, t_half: float, t_full: float) -> tuple[float, float, float, bool]:
    """(cold clips/s, steady clips/s, fixed seconds, measured) from a job timed on n // 2 and n clips."""
    cold = n / t_full
    if t_full - t_half < MIN_SPLIT_S:
        return cold, cold, 0.0, False
    steady = (n - n // 2) / (t_full - t_half)
    return cold, steady, max(0.0, t_half - (n // 2) / steady), True


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=96, help="unlabeled clips per timed job")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liser-bench-workers-"))
    os.environ.setdefault("LISER_CACHE", str(work / "cache"))
    from liser.synth import generate

    generate(work / "synth", actors=5, unlabeled_clips=args.clips, progress=False)
    labeled = load_corpus(f"ravdess:{work / 'synth' / 'ravdess'}")
    unlabeled = load_corpus(f"avclips:{work / 'synth' / 'avclips'}")
    n, seconds = len(unlabeled.manifest), float(unlabeled.manifest["duration"].sum())
    frames = seconds * 30
    fit_speech_teachers(labeled, make_folds(labeled.manifest["speaker"].unique(), 5), [0], make_config(backbone="tiny-synth", epochs=1, threads=1), work / "speech", progress=False)
    import ray

    start = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="warning")
    ray_start = time.perf_counter() - start
    here, one, two = Pool(workers=1), Pool(workers=1, address="local"), Pool(workers=2)
    runs = iter(range(1000))

    def fresh() -> Path:
        return work / f"c{next(runs)}"

    from dataclasses import replace

    half = replace(unlabeled, manifest=unlabeled.manifest.head(n // 2))
    stages = {
        "features (decode + log-Mel)": lambda pool, c: featurize(c, fresh(), progress=False, pool=pool),
        "faces (DeepFace opencv)": lambda pool, c: extract_corpus_faces(c, FaceStore(fresh() / "faces", detector="opencv"), progress=False, pool=pool),
        "speech teacher (tiny-synth)": lambda pool, c: cache_speech_outputs(c, work / "speech", work / "out", cache_dir=fresh(), progress=False, pool=pool, batch_size=8),
        "video teacher (FER, 16-frame)": lambda pool, c: cache_video_outputs(c, "fer", work / "out", detector="synthetic", cache_dir=fresh(), progress=False, pool=pool),
    }
    print(f"{n} clips, {seconds:.0f} s of audio-visual data ({frames:.0f} frames), {os.cpu_count()} CPU cores, cold caches")
    print("clips/s of the whole job (cold) and once the workers are up (steady); fixed: the job's seconds beyond its clips;")
    print(f"* the second half took under {MIN_SPLIT_S:.0f} s, too short to split: steady is the cold rate")
    head = f"{'stage':32s}" + "".join(f" {k + ' cold':>11s} {'steady':>7s} {'fixed':>6s}" for k in ("here", "1w", "2w"))
    print(head + f" {'2 vs 1':>7s}")
    rates = {}
    for name, job in stages.items():
        row = []
        for pool in (here, one, two):
            row.append(split_rates(n, timed(lambda: job(pool, half)), timed(lambda: job(pool, unlabeled))))
        rates[name] = row
        cells = "".join(f" {cold:11.2f} {steady:6.2f}{' ' if ok else '*'} {fixed:5.1f}s" for cold, steady, fixed, ok in row)
        print(f"{name:32s}{cells} {row[2][1] / row[1][1]:6.2f}x")

    per_clip = timed(lambda: cache_speech_outputs(unlabeled, work / "speech", work / "out", cache_dir=fresh(), progress=False, batch_size=1))
    batched = timed(lambda: cache_speech_outputs(unlabeled, work / "speech", work / "out", cache_dir=fresh(), progress=False, batch_size=8))
    print(f"speech teacher in this process: one clip at a time {n / per_clip:.2f} clips/s, batches of 8 clips {n / batched:.2f} clips/s ({per_clip / batched:.2f}x)")

    small = replace(unlabeled, manifest=unlabeled.manifest.head(20))
    t_local = timed(lambda: featurize(small, fresh(), progress=False, pool=here))
    t_ray = timed(lambda: featurize(small, fresh(), progress=False, pool=two))
    print(f"Ray's fixed cost: starting a local Ray {ray_start:.1f} s; then a 20-clip features job takes {t_ray:.1f} s on 2 workers "
          f"against {t_local:.2f} s in this process (+{t_ray - t_local:.1f} s of actor start and scheduling)")

    scale = {"features (decode + log-Mel)": MSP_SECONDS / seconds, "faces (DeepFace opencv)": MSP_FRAMES / frames,
             "speech teacher (tiny-synth)": MSP_FOLDS * MSP_SECONDS / seconds, "video teacher (FER, 16-frame)": MSP_FRAMES / frames}
    print("\nprojection for MSP-Face (46.55 h, 5.0 M frames, 5 fold speech teachers), hours at the steady rates; 'here' is this")
    print("process, N w is N one-thread workers at the measured 1-worker rate and 2-worker efficiency (fixed costs are seconds):")
    workers = (1, 2, 4, 8, 16)
    print(f"{'stage':32s} {'here':>5s} " + " ".join(f"{w:>4d}w" for w in workers))
    total = {w: 0.0 for w in ("here", *workers)}
    for name, row in rates.items():
        here_rate, one_rate, two_rate = (steady for _, steady, _, _ in row)
        eff = min(1.0, (two_rate / one_rate) / 2)  # the measured 2-worker efficiency, assumed to hold per added worker
        hours = [n * scale[name] / here_rate / 3600]
        hours += [n * scale[name] / one_rate / 3600 / (1 if w == 1 else w * eff) for w in workers]
        for key, h in zip(("here", *workers), hours):
            total[key] += h
        print(f"{name:32s} " + " ".join(f"{h:5.1f}" for h in hours))
    print(f"{'all stages':32s} " + " ".join(f"{total[k]:5.1f}" for k in ("here", *workers)))


if __name__ == "__main__":
    main()
