"""Frames, DeepFace face crops (offline) and the face store."""

from __future__ import annotations

import socket
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from liser.corpora.manifest import Corpus, make_manifest
from liser.teachers import faces
from liser.teachers.faces import FaceStore, extract_corpus_faces, extract_faces
from liser.teachers.video_decode import VideoError, read_frames


def write_video(
    path: Path, fps: float = 30, seconds: float = 1.0, size: int = 32, options: dict | None = None, texture: bool = False
) -> Path:
    """A grey video whose frame i has brightness 4 i (mod 256), so picks can be traced;
    ``texture`` draws a checkerboard instead, which "prealigned" counts as a face."""
    with av.open(str(path), "w", format="mp4", options=options or {}) as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1001))
        stream.width = stream.height = size
        stream.pix_fmt, stream.bit_rate = "yuv420p", 2_000_000
        for i in range(round(seconds * fps)):
            image = np.full((size, size, 3), (4 * i) % 256, np.uint8)
            if texture:
                image[:] = np.kron((np.indices((size // 8, size // 8)).sum(0) % 2) * 200 + 20, np.ones((8, 8), int))[..., None]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def brightness(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(len(frames), -1).mean(1)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ----------------------------------------------------------------------- read_frames
def test_read_frames_keeps_30_fps_frame_for_frame(tmp_path):
    frames, info = read_frames(write_video(tmp_path / "a.mp4", fps=30, seconds=1.0))
    assert frames.shape == (30, 32, 32, 3) and frames.dtype == np.uint8
    assert not info.resampled and info.source_fps == 30 and info.n_source_frames == 30
    np.testing.assert_allclose(brightness(frames), 4 * np.arange(30), atol=3)


def test_read_frames_resamples_to_30_fps(tmp_path):
    frames, info = read_frames(write_video(tmp_path / "b.mp4", fps=60, seconds=2.0))
    assert info.resampled and info.source_fps == 60 and info.n_source_frames == 120
    assert len(frames) == 60  # 2 s x 30
    np.testing.assert_allclose(brightness(frames), (8 * np.arange(60)) % 256, atol=3)  # every other frame
    frames, info = read_frames(write_video(tmp_path / "c.mp4", fps=25, seconds=2.0))
    assert info.resampled and info.n_source_frames == 50 and abs(len(frames) - 60) <= 1
    picked = np.round(brightness(frames) / 4).astype(int)  # source index of each output frame
    assert np.all(np.abs(picked - np.arange(len(frames)) * 25 / 30) <= 0.5)  # the nearest one
    frames, info = read_frames(write_video(tmp_path / "d.mp4", fps=29.97, seconds=1.0))
    assert not info.resampled and len(frames) == 30


def test_read_frames_max_side(tmp_path):
    frames, info = read_frames(write_video(tmp_path / "big.mp4", size=128, seconds=0.2), max_side=48)
    assert frames.shape[1:] == (48, 48, 3) and info.source_size == (128, 128) and info.size == (48, 48)


def test_read_frames_refuses_broken_videos(tmp_path):
    data = write_video(tmp_path / "ok.mp4", seconds=2.0).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end: lost
    with pytest.raises(VideoError, match="unreadable") as err:
        read_frames(tmp_path / "cut.mp4")
    assert err.value.reason.startswith("unreadable")
    data = write_video(tmp_path / "fast.mp4", seconds=2.0, options={"movflags": "faststart"}).read_bytes()
    (tmp_path / "cut_fast.mp4").write_bytes(data[: len(data) // 2])  # index first, data cut short
    with pytest.raises(VideoError, match="truncated"):
        read_frames(tmp_path / "cut_fast.mp4")
    with av.open(str(tmp_path / "audio.mp4"), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with pytest.raises(VideoError, match="no video stream"):
        read_frames(tmp_path / "audio.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty file"):
        read_frames(tmp_path / "empty.mp4")


# ----------------------------------------------------------------------- face crops
def test_deepface_finds_the_astronaut_offline(no_network):
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()  # a real photograph with one face
    blank = np.full((200, 200, 3), 128, np.uint8)
    track = extract_faces(np.stack([photo, np.zeros_like(photo)]), detector="opencv", size=64)
    assert track.crops.shape == (2, 64, 64, 3) and track.crops.dtype == np.uint8
    assert track.found.tolist() == [True, False]
    assert track.crops[0].std() > 20 and not track.crops[1].any()
    assert not extract_faces(blank[None], detector="opencv").found[0]
    weights = Path(faces.os.environ["DEEPFACE_HOME"]) / ".deepface" / "weights"
    assert all((weights / name).is_file() for name in faces.HAARCASCADE_FILES)
    assert "tensorflow" not in sys.modules


def test_prealigned_frames_and_box():
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    blank = np.full((48, 48, 3), 10, np.uint8)
    track = extract_faces(np.stack([face, blank]), detector="prealigned", size=32)
    assert track.found.tolist() == [True, False] and track.crops.shape == (2, 32, 32, 3)
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[20:60, 40:80] = face[:40, :40]
    boxed = extract_faces(frame[None], detector="prealigned", size=40, box=(0.4, 0.2, 0.8, 0.6))
    np.testing.assert_array_equal(boxed.crops[0], face[:40, :40])
    synthetic = extract_faces(frame[None], detector="synthetic", size=40)  # the box of the drawn clips
    np.testing.assert_array_equal(synthetic.crops, extract_faces(frame[None], "prealigned", 40, box=faces.SYNTH_FACE_BOX).crops)
    with pytest.raises(ValueError, match="box"):
        extract_faces(frame[None], detector="prealigned", box=(0.5, 0.5, 0.4, 0.9))


# ----------------------------------------------------------------------- store
def test_face_store_caches_and_recomputes_corrupt_entries(tmp_path, monkeypatch):
    video = write_video(tmp_path / "clip.mp4", seconds=0.5)
    store = FaceStore(tmp_path / "store", detector="prealigned", size=16)
    first, cached = store.fetch(video)
    assert not cached and store.stats == {"computed": 1, "cached": 0}
    real_read = faces.read_frames
    monkeypatch.setattr(faces, "read_frames", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    again = FaceStore(tmp_path / "store", detector="prealigned", size=16).get(video)  # a new store reads the file
    np.testing.assert_array_equal(again.crops, first.crops)
    np.testing.assert_array_equal(again.found, first.found)
    entry = next((tmp_path / "store").rglob("*.npz"))
    entry.write_bytes(b"not a zip file")
    monkeypatch.setattr(faces, "read_frames", real_read)
    track, cached = store.fetch(video)
    assert not cached and store.stats["computed"] == 2
    np.testing.assert_array_equal(track.crops, first.crops)
    assert FaceStore(tmp_path / "store", detector="prealigned", size=16).fetch(video)[1]  # rewritten
    other = FaceStore(tmp_path / "store", detector="prealigned", size=24).get(video)  # size is in the key
    assert other.crops.shape[1:] == (24, 24, 3)


def test_extract_corpus_faces_counts(tmp_path):
    good = write_video(tmp_path / "good.mp4", seconds=0.5, texture=True)
    blank = tmp_path / "blank.mp4"
    with av.open(str(blank), "w", format="mp4") as container:  # a picture with no face at all
        stream = container.add_stream("mpeg4", rate=30)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 7, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 300)
    rows = [
        {"clip_id": p.stem, "path": str(p), "speaker": "s", "label": None, "label_index": -1, "video_path": str(p)}
        for p in (good, blank, broken)
    ]
    corpus = Corpus("avclips", tmp_path, (), make_manifest(rows))
    store = FaceStore(tmp_path / "store", detector="prealigned", size=16)
    counts = extract_corpus_faces(corpus, store, progress=False)
    assert counts["clips"] == 2 and counts["computed"] == 2 and counts["from_cache"] == 0
    assert counts["frames"] == 25 and counts["frames_no_face"] == 10 and counts["clips_no_face"] == 1
    assert [Path(p).name for p, _ in counts["skipped"]] == ["broken.mp4"]
    assert counts["frames_per_s"] > 0
    again = extract_corpus_faces(corpus, store, progress=False)
    assert again["from_cache"] == 2 and again["computed"] == 0 and len(again["skipped"]) == 1  # reason remembered
    assert isinstance(pd.DataFrame(again["skipped"]), pd.DataFrame)


def test_cli_faces_stores_crops_of_the_asked_size(synth_root, tmp_path):
    """`liser teacher video faces --size 32` fills the store a 32 px small DFER reads."""
    from click.testing import CliRunner

    from liser.cli import main
    from liser.corpora import load_corpus

    spec = f"avclips:{synth_root / 'avclips'}"
    args = ["teacher", "video", "faces", "--unlabeled", spec, "--detector", "synthetic", "--size", "32", "--cache-dir", str(tmp_path), "-q"]
    result = CliRunner().invoke(main, args)
    n = len(load_corpus(spec).manifest)
    assert result.exit_code == 0, result.output
    assert f"{n} clips: {n} extracted, 0 from cache" in result.output
    store = FaceStore(tmp_path / "faces", detector="synthetic", size=32)
    tracks = [store.get(p) for p in load_corpus(spec).manifest["video_path"]]
    assert store.stats == {"computed": 0, "cached": n} and {t.crops.shape[1:] for t in tracks} == {(32, 32, 3)}
    bad = CliRunner().invoke(main, args[:-3] + ["--size", "8"])
    assert bad.exit_code == 2 and "--size" in bad.output
