"""Video windows and the one video-teacher interface (liser/teachers/video.py)."""

from __future__ import annotations


import numpy as np
import pytest

from liser.constants import FERV39K_CLASSES
from liser.teachers.faces import FaceTrack
from liser.teachers.video import VideoTeacher, predict_windows_batch, to_teacher_outputs, windows


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


def test_a_teacher_without_a_batch_method_is_run_one_track_at_a_time():
    tracks = [track_with_faces(48, slice(0, 48)), track_with_faces(20)]
    out = predict_windows_batch(ConstantTeacher(), tracks)
    assert [v.tolist() for _, v in out] == [[True, True, True], [False]]
    assert out[0][0].argmax(1).tolist() == [FERV39K_CLASSES.index("happy")] * 3
