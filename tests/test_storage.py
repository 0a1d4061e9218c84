"""The one atomic write: all or nothing, and no temp file left behind."""

import os

import numpy as np
import pytest

from liser.storage import write_atomic, write_text_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "table.json"
    write_text_atomic(path, '{"a": 1}')
    assert path.read_text() == '{"a": 1}'

    def half(fh):
        fh.write(b'{"a": ')
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic(path, half)
    assert path.read_text() == '{"a": 1}'
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.json"]


def test_the_temp_name_carries_the_pid(tmp_path):
    seen = []
    path = tmp_path / "x.npz"
    write_atomic(path, lambda fh: (seen.append(fh.name), np.savez(fh, a=np.arange(3))))
    assert f".x.npz.{os.getpid()}.tmp" in seen[0]
    assert np.load(path)["a"].tolist() == [0, 1, 2]
