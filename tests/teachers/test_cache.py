"""The teacher-output cache: once per clip, invalidated by checkpoint, corruption-proof, resumable."""

import numpy as np
import pytest
import soundfile as sf

from liser.audio import load_audio
from liser.corpora.manifest import Corpus, make_manifest
from liser.teachers.cache import run_teacher


class CountingTeacher:
    """A stand-in teacher whose output depends on the clip's audio: two classes from RMS per 0.5 s."""

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, path):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # a run killed mid-way
        self.calls += 1
        wave = load_audio(path)
        seg = 8000
        rms = np.array([np.sqrt(np.mean(wave[i : i + seg] ** 2)) for i in range(0, len(wave), seg)])
        probs = np.stack([rms, 1 - rms], 1)
        return probs / probs.sum(1, keepdims=True), rms > 0.01


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(5):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, (0.05 * (i + 1) * rng.standard_normal(16000 + 4000 * i)).astype(np.float32), 16000)
        rows.append(dict(clip_id=path.stem, path=str(path), speaker="x", label=None, label_index=-1, duration=1.0, sample_rate=16000))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    rows.append(dict(clip_id="silent", path=str(silent), speaker="x", label=None, label_index=-1, duration=1.0, sample_rate=16000))
    return Corpus("toy", tmp_path, (), make_manifest(rows))


def _run(corpus, teacher, cache, checkpoint="ckpt-a"):
    return run_teacher(corpus, "speech", ("loud", "quiet"), checkpoint, {"segment": 0.5}, teacher, segment_seconds=0.5, cache_dir=cache, progress=False)


def test_second_run_does_no_teacher_work(corpus, tmp_path):
    teacher = CountingTeacher()
    first, run1 = _run(corpus, teacher, tmp_path / "cache")
    assert run1.computed == 5 and teacher.calls == 6  # the silent clip was tried once and recorded as skipped
    assert len(run1.skipped) == 1 and run1.skipped[0][1].startswith("silent")
    assert len(first.segments("clip2")[0]) == 3  # 1.5 s -> three 0.5 s segments
    assert first.meta["cache"]["computed"] == 5 and first.meta["skipped"][0]["reason"].startswith("silent")

    second, run2 = _run(corpus, teacher, tmp_path / "cache")
    assert teacher.calls == 6 and run2.computed == 0 and run2.cached == 6
    for cid in first.clip_ids:
        np.testing.assert_array_equal(first.segments(cid)[0], second.segments(cid)[0])


def test_changed_checkpoint_recomputes_only_that_teacher(corpus, tmp_path):
    cache = tmp_path / "cache"
    a, b = CountingTeacher(), CountingTeacher()
    _run(corpus, a, cache, "ckpt-a")
    _run(corpus, b, cache, "ckpt-b")  # a new checkpoint: every clip again, for the new teacher
    assert b.calls == 6
    _run(corpus, a, cache, "ckpt-a")  # the old teacher's entries are untouched
    assert a.calls == 6


def test_corrupt_entry_is_detected_and_recomputed(corpus, tmp_path):
    cache = tmp_path / "cache"
    teacher = CountingTeacher()
    _run(corpus, teacher, cache)
    entries = sorted((cache / "teachers").rglob("*.npz"))
    entries[0].write_bytes(entries[0].read_bytes()[:40])  # truncated
    out, run = _run(corpus, teacher, cache)
    assert run.corrupt == 1 and run.computed == 1 and teacher.calls == 7
    assert len(out.clip_ids) == 5


def test_killed_run_resumes_where_it_stopped(corpus, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        _run(corpus, CountingTeacher(fail_after=3), cache)
    teacher = CountingTeacher()
    _, run = _run(corpus, teacher, cache)
    assert run.cached == 3 and teacher.calls == 3  # only the clips the killed run had not reached
