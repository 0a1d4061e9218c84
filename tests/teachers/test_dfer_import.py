"""Imported DFER outputs (liser/teachers/dfer_import.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from liser.constants import FERV39K_CLASSES
from liser.targets import TeacherOutputs
from liser.teachers import dfer_import
from liser.teachers.dfer_import import import_dfer_outputs


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
    monkeypatch.setattr(dfer_import.importlib.util, "find_spec", lambda name: None if name in ("pyarrow", "fastparquet") else real(name))
    with pytest.raises(ImportError, match="pip install pyarrow.*CSV"):
        import_dfer_outputs(tmp_path / "x.parquet")
