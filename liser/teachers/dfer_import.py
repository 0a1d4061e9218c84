"""Imported video-teacher outputs: S2D, or any external DFER model run elsewhere.

A CSV (or parquet, with ``pyarrow``) with one row per 16-frame window::

    clip_id,start_frame,angry,disgust,fear,happy,neutral,sad,surprise[,valid]
    MSP-FACE_0001_0001,0,0.02,0.01,0.03,0.80,0.10,0.02,0.02
    MSP-FACE_0001_0001,16,...

``start_frame`` is the window's first frame at 30 fps, a multiple of 16 (window index
``start_frame / 16``). The seven class columns may come in any order and are matched by
name (case-insensitive; ``anger``, ``fearful``, ``happiness``, ``sadness``, ``surprised``,
``disgusted`` accepted). Each row must sum to 1 within 1e-3 and is then renormalised; other
rows are an error naming the file and row. Optional ``valid`` (0/1, true/false) marks
windows without a face; their probabilities are ignored. Windows missing between 0 and a
clip's last row are invalid.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liser.constants import DFER_WINDOW_FRAMES, FERV39K_CLASSES, VIDEO_FPS
from liser.errors import InputNotFound, TeacherError
from liser.storage import sha1_file
from liser.targets import TeacherOutputs
from liser.teachers.video import N_FERV, WINDOW_SECONDS, normalise_class_name

log = logging.getLogger(__name__)


def import_dfer_outputs(path: str | Path, clip_ids: Iterable[str] | None = None, name: str | None = None) -> TeacherOutputs:
    """Read an external DFER model's per-window softmaxes (format in the module docstring).

    With ``clip_ids`` (the unlabeled corpus's ids), rows of other clips are dropped and
    reported, as are corpus clips the file does not cover (``meta["not_in_corpus"]``,
    ``meta["not_in_file"]``); such clips get no video target.
    """
    path = Path(path)
    table = _read_table(path)
    columns = {}
    for col in table.columns:
        key = normalise_class_name(col)
        if key in FERV39K_CLASSES or key in ("clip_id", "start_frame", "valid"):
            if key in columns:
                raise TeacherError(f"{path}: columns {columns[key]!r} and {col!r} both name {key!r}")
            columns[key] = col
    missing = [c for c in ("clip_id", "start_frame", *FERV39K_CLASSES) if c not in columns]
    if missing:
        expected = ", ".join(("clip_id", "start_frame", *FERV39K_CLASSES))
        raise TeacherError(f"{path}: missing column(s) {', '.join(missing)}; expected {expected} [, valid]")
    clip = table[columns["clip_id"]].astype(str).to_numpy()
    start = pd.to_numeric(table[columns["start_frame"]], errors="coerce").to_numpy(float)
    probs = table[[columns[c] for c in FERV39K_CLASSES]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    valid = _parse_valid(table[columns["valid"]], path) if "valid" in columns else np.ones(len(table), bool)

    def where(i: int) -> str:  # data row i is line i + 2 of a CSV (after the header)
        return f"{path}: row {i + 1} (clip {clip[i]!r}, start_frame {table[columns['start_frame']].iloc[i]})"

    bad_start = np.flatnonzero(~np.isfinite(start) | (start < 0) | (np.mod(start, DFER_WINDOW_FRAMES) != 0))
    if len(bad_start):
        raise TeacherError(f"{where(bad_start[0])}: start_frame must be a non-negative multiple of {DFER_WINDOW_FRAMES}")
    sums = probs.sum(1)
    bad = np.flatnonzero(valid & ~(np.all(np.isfinite(probs) & (probs >= -1e-6), 1) & (np.abs(sums - 1) <= 1e-3)))
    if len(bad):
        raise TeacherError(f"{where(bad[0])}: probabilities sum to {sums[bad[0]]:.6g}, not 1 within 1e-3 ({len(bad)} such rows)")
    probs = np.where(valid[:, None], np.clip(probs, 0, None), 1.0 / N_FERV)
    probs /= probs.sum(1, keepdims=True)
    index = (start // DFER_WINDOW_FRAMES).astype(np.int64)
    dup = pd.Series(list(zip(clip, index))).duplicated().to_numpy()
    if dup.any():
        raise TeacherError(f"{where(np.flatnonzero(dup)[0])}: this clip and start_frame appear twice")

    keep = set(clip_ids) if clip_ids is not None else None
    segments, masks, dropped = {}, {}, []
    order = np.lexsort((index, clip))
    for cid, rows in pd.Series(order).groupby(clip[order], sort=False):
        rows = rows.to_numpy()
        if keep is not None and cid not in keep:
            dropped.append(cid)
            continue
        n = int(index[rows].max()) + 1
        seg = np.full((n, N_FERV), 1.0 / N_FERV, np.float32)
        ok = np.zeros(n, bool)
        seg[index[rows]] = probs[rows]
        ok[index[rows]] = valid[rows]
        segments[cid], masks[cid] = seg, ok
    meta: dict[str, Any] = {
        "teacher": name or f"imported:{path.name}",
        "checkpoint_hash": sha1_file(path),
        "source_file": str(path),
        "window_frames": DFER_WINDOW_FRAMES,
        "fps": VIDEO_FPS,
    }
    if keep is not None:
        not_in_file = sorted(keep - set(segments))
        meta["not_in_corpus"] = {"count": len(dropped), "examples": sorted(dropped)[:20]}
        meta["not_in_file"] = {"count": len(not_in_file), "examples": not_in_file[:20]}
        if dropped:
            log.warning("%s: %d clip(s) are not in the corpus and were dropped, e.g. %s", path, len(dropped), sorted(dropped)[:5])
        if not_in_file:
            log.warning("%s: %d corpus clip(s) have no rows and get no video target, e.g. %s", path, len(not_in_file), not_in_file[:5])
    return TeacherOutputs.from_segments("video", FERV39K_CLASSES, segments, masks, segment_seconds=WINDOW_SECONDS, meta=meta)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputNotFound(f"{path}: DFER output file not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
            raise ImportError(f"{path}: reading parquet needs pyarrow; `pip install pyarrow`, or export the outputs as CSV")
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise TeacherError(f"{path}: not a readable CSV ({err})") from err


def _parse_valid(column: pd.Series, path: Path) -> np.ndarray:
    text = column.astype(str).str.strip().str.lower()
    truth = {"1": True, "1.0": True, "true": True, "yes": True, "0": False, "0.0": False, "false": False, "no": False}
    unknown = sorted(set(text) - set(truth))
    if unknown:
        raise TeacherError(f"{path}: column 'valid' holds {unknown[:5]}; use 1/0 or true/false")
    return text.map(truth).to_numpy(bool)
