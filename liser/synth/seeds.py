"""Named random streams: every synthetic item draws from its own stream, so a corpus is the same
whichever worker makes which part, and adding an item never shifts another's draws."""

from __future__ import annotations

import zlib

import numpy as np


def named_rng(seed: int, *keys: object) -> np.random.Generator:
    """An independent random stream for one named item (stable across runs and workers)."""
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])
