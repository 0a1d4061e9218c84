import numpy as np
import pytest

from liser.constants import FERV39K_CLASSES
from liser.targets import TeacherFileError, TeacherOutputs, find_teacher_files


def _outputs():
    probs = np.eye(7, dtype=np.float32)[[0, 1, 2, 3, 4, 5, 6, 0]]  # 8 segments = 4 s
    valid = np.array([True] * 6 + [False, False])
    return TeacherOutputs.from_segments("video", FERV39K_CLASSES, {"a": probs, "b": probs[:2]}, valid={"a": valid})


def test_roundtrip_and_window_average(tmp_path):
    out = _outputs()
    path = out.save(tmp_path / "video.npz")
    back = TeacherOutputs.load(path)
    assert back.clip_ids == ["a", "b"] and back.kind == "video" and back.classes == FERV39K_CLASSES
    # window [0.5, 3.5): segments 1..6 by midpoint; 6 is invalid -> mean of one-hots 1..5
    t = back.window_target("a", 0.5, 3.0)
    np.testing.assert_allclose(t, np.eye(7)[[1, 2, 3, 4, 5]].mean(0), atol=1e-6)
    assert back.window_target("a", 3.0, 3.0) is None  # only invalid segments there
    assert "b" in back and "c" not in back
    assert find_teacher_files(tmp_path) == {"video": {None: path}}
    assert find_teacher_files(path) == {"video": {None: path}}


def test_corrupt_and_invalid_files_name_the_file(tmp_path):
    bad = tmp_path / "speech.npz"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(TeacherFileError, match="speech.npz.*not a readable"):
        TeacherOutputs.load(bad)
    with pytest.raises(TeacherFileError, match="sum to 1"):
        TeacherOutputs.from_segments("speech", ("a", "b"), {"x": np.array([[0.9, 0.9]])})
    with pytest.raises(TeacherFileError, match="not found"):
        TeacherOutputs.load(tmp_path / "missing.npz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TeacherFileError, match="holds no teacher-output file"):
        find_teacher_files(empty)


def test_saving_the_same_content_keeps_the_file_and_its_hash(tmp_path):
    """Studies key runs by a teacher file's hash; a re-cache of identical outputs must not change it."""
    import hashlib
    import os

    out = _outputs()
    path = out.save(tmp_path / "video.npz")
    digest, stamp = hashlib.sha1(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))  # as if written a second earlier
    out.save(path)
    assert hashlib.sha1(path.read_bytes()).hexdigest() == digest and path.stat().st_mtime_ns == stamp - 10**9
    out.meta["teacher"] = "another"  # new content: written
    out.save(path)
    assert TeacherOutputs.load(path).meta["teacher"] == "another" and hashlib.sha1(path.read_bytes()).hexdigest() != digest


def test_content_hash_ignores_how_the_cache_made_the_file(tmp_path):
    from liser.targets import content_hash

    out = _outputs()
    out.meta["cache"] = {"computed": 2, "cached": 0}
    first = content_hash(out.save(tmp_path / "a.npz"))
    out.meta["cache"] = {"computed": 0, "cached": 2}  # the same outputs, all reused this time
    assert content_hash(out.save(tmp_path / "b.npz")) == first
    out.probs[0, 0] = 0.5  # other outputs: another hash
    assert content_hash(out.save(tmp_path / "c.npz")) != first
