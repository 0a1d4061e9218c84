"""Per-clip stages in worker processes (liser/workers.py): the same outputs as one clip at a time,
on a local Ray and on a real two-node Ray on loopback, resumed exactly after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from liser.audio import load_audio
from liser.corpora import load_corpus
from liser.folds import folds_for
from liser.storage import ClipStore, ContentHashes, PerClip, SkipClip
from liser.targets import TeacherOutputs
from liser.teachers.pipeline import cache_speech_outputs, cache_video_outputs
from liser.teachers.speech import SpeechTeacher, fit_speech_teachers, make_config
from liser.teachers.waves import speech_segments
from liser.workers import Pool


@pytest.fixture(scope="module")
def speech_run(synth_root, tmp_path_factory):
    """One speech teacher on a random 2-layer HuBERT (fold 0, one epoch on 12 clips per actor): what is tested is inference."""
    from dataclasses import replace

    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    backbone = tmp_path_factory.mktemp("tiny-hubert")
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=32, layerdrop=0.0,
    )
    HubertModel(config).save_pretrained(backbone)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(backbone)
    corpus = load_corpus(f"ravdess:{synth_root / 'ravdess'}")
    corpus = replace(corpus, manifest=corpus.manifest.groupby("speaker", group_keys=False).head(12).reset_index(drop=True))
    out = tmp_path_factory.mktemp("speech-run")
    cfg = make_config(backbone=str(backbone), epochs=1, batch_size=16, crop_seconds=1.0, threads=1)
    fit_speech_teachers(corpus, folds_for(corpus.manifest), [0], cfg, out, progress=False)
    return out


def _same(a: TeacherOutputs, b: TeacherOutputs, atol=1e-5) -> None:
    assert list(a.clip_ids) == list(b.clip_ids)
    for clip in a.clip_ids:
        (pa, va), (pb, vb) = a.segments(clip), b.segments(clip)
        assert np.array_equal(va, vb) and np.allclose(pa, pb, atol=atol), clip


def test_batched_speech_outputs_equal_one_clip_at_a_time(synth_root, speech_run, tmp_path):
    """Segments of 8 clips through HuBERT together give each clip what it gets alone; the
    segments marked valid are the clip's speech (its pauses are not taught)."""
    unlabeled = load_corpus(f"avclips:{synth_root / 'avclips'}")
    runs = cache_speech_outputs(unlabeled, speech_run, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False, batch_size=8)
    assert runs[0].computed == len(unlabeled.manifest) == 10
    batched = TeacherOutputs.load(tmp_path / "out" / "speech-fold0.npz")
    teacher = SpeechTeacher.load(speech_run / "fold0")
    for clip, path in unlabeled.manifest[["clip_id", "path"]].itertuples(index=False):
        alone = teacher.predict_segments(load_audio(path))
        probs, valid = batched.segments(clip)
        assert probs.shape == alone.shape and np.allclose(probs, alone, atol=1e-5), clip
        np.testing.assert_array_equal(valid, speech_segments(load_audio(path)))
        assert 0 < valid.sum() < len(valid), clip  # conversational clips have pauses between breath groups


def test_store_writes_results_in_corpus_order_and_counts_skips(tmp_path):
    """Whatever order results come back in, entries keep the corpus's order; a data problem is a counted skip."""
    files = []
    for i in range(5):
        files.append(tmp_path / f"c{i}.txt")
        files[-1].write_text("bad" if i == 2 else str(i))

    def compute(path: Path):
        text = path.read_text()
        if text == "bad":
            raise SkipClip("not a number")
        return {"x": np.array([int(text)])}

    class ReversedPool:  # results in reverse order, as a busy pool may return them
        def run(self, task, paths):
            out = list(zip(range(len(paths)), task(paths)))
            return reversed(out)

    store = ClipStore(tmp_path / "store", ContentHashes(tmp_path / "hashes.json"))
    run = store.map([(f"c{i}", f) for i, f in enumerate(files)], PerClip(compute, batch_size=5), progress=False, pool=ReversedPool())
    assert list(run.arrays) == ["c0", "c1", "c3", "c4"] and [int(e["x"][0]) for e in run.arrays.values()] == [0, 1, 3, 4]
    assert run.computed == 5 and run.new_skips == 1 and run.skipped == [(str(files[2]), "not a number")]
    again = store.map([(f"c{i}", f) for i, f in enumerate(files)], compute, progress=False)
    assert again.computed == 0 and again.cached == 5 and list(again.arrays) == list(run.arrays)


def test_pool_settings_are_checked_and_described():
    assert Pool().describe() == "1 worker (this process)" and not Pool().distributed
    assert Pool(workers=None).size_for(10) == 0  # a small job stays in this process
    assert "2 workers on the Ray cluster at 10.0.0.5:6379, 0.5 GPU each" == Pool(2, "10.0.0.5:6379", 0.5).describe()
    with pytest.raises(ValueError, match="--workers 0"):
        Pool(workers=0)


@pytest.mark.ray
def test_two_local_workers_give_the_one_process_outputs(synth_root, speech_run, tmp_path):
    """Speech and video teachers, eGeMAPS LLDs and NSL upstream embeddings on a local Ray with 2
    workers: the files and arrays of a one-process run."""
    import ray

    from liser.targets import ClipOutputs
    from liser.teachers.prosodic import lld_features
    from liser.teachers.upstream import embed_corpus

    unlabeled = load_corpus(f"avclips:{synth_root / 'avclips'}")
    outs, llds, embedded = {}, {}, {}
    for name, pool in (("one", None), ("two", Pool(workers=2))):
        cache = tmp_path / f"cache-{name}"
        runs = cache_speech_outputs(unlabeled, speech_run, tmp_path / name, cache_dir=cache, progress=False, pool=pool, batch_size=3)
        _, video = cache_video_outputs(unlabeled, "fer", tmp_path / name, detector="synthetic", cache_dir=cache, progress=False, pool=pool)
        assert runs[0].computed == 10 and video.computed == 10
        outs[name] = [TeacherOutputs.load(tmp_path / name / f) for f in ("speech-fold0.npz", "video.npz")]
        llds[name], lrun = lld_features(unlabeled, cache, False, pool)
        _, erun = embed_corpus(speech_run / "fold0", unlabeled, tmp_path / name / "upstream.npz", cache_dir=cache, progress=False, pool=pool)
        assert lrun.computed == erun.computed == 10 and len(llds[name]) == 10
        embedded[name] = ClipOutputs.load(tmp_path / name / "upstream.npz")
    ray.shutdown()  # the pool keeps its Ray for the process's next stage; this test's neighbours start their own
    for one, two in zip(outs["one"], outs["two"]):
        _same(one, two)
    assert list(llds["one"]) == list(llds["two"]) and all(np.array_equal(llds["one"][c], llds["two"][c]) for c in llds["one"])
    assert list(embedded["one"].clip_ids) == list(embedded["two"].clip_ids)
    np.testing.assert_allclose(embedded["one"].embeddings, embedded["two"].embeddings, atol=1e-5)


def _cli(*args):
    return [sys.executable, "-m", "liser.cli", *map(str, args)]


def _wait(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _ray_node(ray_bin, args, log: Path, env) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([ray_bin, "start", "--block", "--disable-usage-stats", *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(node: subprocess.Popen) -> None:
    """A node lives in its own process group and is ended through it, never with `ray stop` (which ends every Ray here)."""
    os.killpg(node.pid, signal.SIGTERM)
    try:
        node.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait(30)


@pytest.mark.ray
def test_teacher_cache_on_a_two_node_cluster_resumes_after_sigkill(tmp_path):
    """`liser teacher cache --address` on a head and a second node (loopback); SIGKILL the driver
    mid-run; the rerun computes only what was not finished, and the file equals a one-process run's."""
    import ray

    from liser.synth import generate
    from liser.ui import free_port

    ray.shutdown()
    n = 24
    generate(tmp_path / "synth", actors=1, unlabeled_clips=n, seed=3, video_size=48, workers=1, progress=False)
    spec = f"avclips:{tmp_path / 'synth' / 'avclips'}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    port = free_port()
    head = _ray_node(ray_bin, ["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false"], tmp_path / "head.log", env)
    nodes = [head]
    try:
        _wait(lambda: "Ray runtime started" in (tmp_path / "head.log").read_text() or head.poll() is not None, 120, "ray start --head")
        assert head.poll() is None, (tmp_path / "head.log").read_text()
        nodes.append(_ray_node(ray_bin, ["--address", f"127.0.0.1:{port}", "--num-cpus", "1"], tmp_path / "node.log", env))
        _wait(lambda: "Ray runtime started" in (tmp_path / "node.log").read_text() or nodes[1].poll() is not None, 120, "ray start --address")
        assert nodes[1].poll() is None, (tmp_path / "node.log").read_text()

        args = ("teacher", "cache", "--unlabeled", spec, "--video", "fer", "--detector", "synthetic", "-q")
        cluster = ("--address", f"127.0.0.1:{port}", "--workers", 2, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "out")
        entries = lambda: list((tmp_path / "cache" / "teachers").rglob("*.npz")) if (tmp_path / "cache" / "teachers").exists() else []
        driver = subprocess.Popen(_cli(*args, *cluster), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: len(entries()) >= 3 or driver.poll() is not None, 300, "the first teacher entries")
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
        finished = len(entries())
        assert 3 <= finished < n, f"the driver was not killed mid-run ({finished} of {n} entries)"
        for entry in entries():  # no partial entry: whatever the kill interrupted is a temp file, never an entry
            with np.load(entry) as data:
                assert {"probs", "valid"} <= set(data.files)

        done = subprocess.run(_cli(*args, *cluster), env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"video: ran on {n - finished} clips, {finished} from cache" in done.stdout, done.stdout

        cache_video_outputs(load_corpus(spec), "fer", tmp_path / "one", detector="synthetic", cache_dir=tmp_path / "cache-one", progress=False)
        _same(TeacherOutputs.load(tmp_path / "out" / "video.npz"), TeacherOutputs.load(tmp_path / "one" / "video.npz"))
        assert all(node.poll() is None for node in nodes)  # the cluster outlives the drivers that joined it
    finally:
        for node in reversed(nodes):
            _stop(node)
