"""Per-clip stages on many processes: a pool of Ray actors behind :meth:`liser.storage.ClipStore.map`.

Decoding and featurizing, face crops, every teacher's outputs, eGeMAPS and upstream
embeddings are per-clip stages over one content-addressed store. The driver finds what the
store lacks, hands those clips to the pool in batches, and writes each result as it comes
back, so a driver killed at any moment (SIGKILL too) loses only the batches in flight, and
workers never write the store (on a cluster they only need to *read* the media files, which
must then sit on storage every node mounts at the same path).

The workers are Ray actors, not Ray Data's ``map_batches``: each actor builds its task's model
once and keeps it, results stream back batch by batch in whatever order they finish (the
driver writes them at once, which is what makes resume exact), and the same few lines run on a
local Ray and on a cluster joined with ``--address``. Ray Data would add a dataset layer,
its own block store and backpressure tuning for what is here a plain list of file paths.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from liser.cluster import check_ray_address, init_ray, join_with_token
from liser.storage import ClipTask, SkipClip, batches, run_local

IN_FLIGHT = 2  # batches queued per worker: one computing, one ready to start


@dataclass(frozen=True)
class Pool:
    """How a per-clip stage runs: ``workers`` processes (1: in this process, no Ray; None: one per
    core of a local Ray, or this process when fewer clips need computing than the task's
    ``auto_min_clips``, where Ray's start would cost more than it saves), on a local Ray or the
    cluster at ``address``; ``gpus_per_worker`` (fractions share a GPU)."""

    workers: int | None = 1
    address: str | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers {self.workers}: give 1 or more")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise ValueError("--gpus-per-worker must be >= 0 and CPUs per worker > 0")

    @property
    def distributed(self) -> bool:
        """Whether the pool may use Ray (an auto pool decides per job, from its size)."""
        return self.workers is None or self.workers > 1 or self.address is not None or self.gpus_per_worker > 0

    def size_for(self, n_clips: int, auto_min_clips: int = 48) -> int:
        """Workers for a job of ``n_clips`` clips to compute (0: run in this process; -1: one per CPU of the Ray)."""
        if self.workers is None:
            if self.address is None and self.gpus_per_worker == 0 and (n_clips < auto_min_clips or (os.cpu_count() or 1) < 2):
                return 0
            return -1  # as many as the Ray it joins has CPUs for
        return self.workers if self.distributed else 0

    def describe(self) -> str:
        if not self.distributed:
            return "1 worker (this process)"
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
        gpus = f", {self.gpus_per_worker:g} GPU each" if self.gpus_per_worker else ""
        count = "one worker per core" if self.workers is None else f"{self.workers} workers"
        return f"{count} on {where}{gpus}"

    def run(self, task: ClipTask, paths: list[Path]) -> Iterator[tuple[int, "dict | SkipClip"]]:
        """(index, entry or SkipClip) for every path, as batches finish; a bug in a worker propagates."""
        n_workers = self.size_for(len(paths), task.auto_min_clips)
        if not n_workers or not paths:
            yield from run_local(task, paths)
            return
        import ray

        if self.address:
            check_ray_address(self.address)
            join_with_token()
        if init_ray(self.address, None):  # once per process: the next stage (the next fold's teacher) reuses it
            import atexit

            atexit.register(ray.shutdown)
        if n_workers < 0:
            n_workers = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_worker))
        actor = ray.remote(_Worker).options(num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker)
        actors = [actor.remote(task, max(1, math.floor(self.cpus_per_worker))) for _ in range(n_workers)]
        queue = iter(batches(len(paths), task.batch_size))
        pending: dict = {}

        def submit(worker) -> None:
            idx = next(queue, None)
            if idx is not None:
                pending[worker.run.remote([str(paths[i]) for i in idx])] = (worker, idx)

        try:
            for worker in actors:
                for _ in range(IN_FLIGHT):
                    submit(worker)
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                worker, idx = pending.pop(ref)
                results = ray.get(ref)
                submit(worker)
                yield from zip(idx, results)
        finally:
            for worker in actors:
                ray.kill(worker)


class _Worker:
    """One Ray actor: keeps its copy of the task (and the model the task loads on first use)."""

    def __init__(self, task: ClipTask, threads: int):
        import torch

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch.set_num_threads(threads)  # a worker's share of the cores: N workers on N cores, not N x N threads
        try:
            import cv2

            cv2.setNumThreads(threads)  # face detection and video decoding thread on their own otherwise
        except ImportError:  # pragma: no cover
            pass
        self.task = task

    def run(self, paths: list[str]) -> list:
        return self.task([Path(p) for p in paths])
