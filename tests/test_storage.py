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


def test_the_temp_name_carries_the_pid_and_thread(tmp_path):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    seen = []
    path = tmp_path / "x.npz"
    write_atomic(path, lambda fh: (seen.append(fh.name), np.savez(fh, a=np.arange(3))))
    assert f".x.npz.{os.getpid()}-{threading.get_ident()}.tmp" in seen[0]
    assert np.load(path)["a"].tolist() == [0, 1, 2]

    # two threads of one process writing the same file at once (two studies caching one
    # corpus's features): each through its own temp file, both succeed, one whole file stays
    barrier = threading.Barrier(2)

    def slow(fh, value):
        barrier.wait(5)
        np.savez(fh, a=np.full(3, value))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda v: write_atomic(path, lambda fh: slow(fh, v)), (1, 2)))
    assert np.load(path)["a"].tolist() in ([1, 1, 1], [2, 2, 2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]
