"""Generic CSV adapter: required columns, sorted classes, relative and absolute paths, counted skips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from liser.corpora import available_corpora, load_corpus
from liser.corpora.table import prepare
from liser.folds import folds_for

HEADER = "path,speaker,label,transcript,gender\n"


@pytest.fixture()
def table(tmp_path: Path, make_wav: Callable[..., Path]) -> Path:
    """Six speakers in speaker folders, one absolute path elsewhere, and rows to skip."""
    root = tmp_path / "mycorpus"
    elsewhere = make_wav(tmp_path / "elsewhere" / "0001.wav", sr=16_000)
    make_wav(root / "bad.wav").write_bytes(b"not audio")
    lines = [HEADER]
    for s in range(1, 7):
        for i, label in enumerate(("sad", "angry")):
            make_wav(root / f"spk{s}" / f"000{i}.wav", sr=16_000)  # same names in every speaker folder
            lines.append(f"spk{s}/000{i}.wav,spk{s},{label},\"Hello, {s}\",{'F' if s % 2 else 'M'}\n")
    lines += [
        f"{elsewhere},spk1,neutral,,\n",
        "spk1/0000.wav,spk1,sad,again,F\n",  # the same path twice
        "spk9/missing.wav,spk9,sad,,\n",
        "spk2/0000.wav,spk2,,,\n",  # empty label
        ",spk2,sad,,\n",  # empty path
        "spk2/0001.wav,spk2,sad,,,extra\n",  # too many fields
        "spk2/0001.wav,spk2\n",  # too few fields
        "\n",
        "bad.wav,spk3,sad,,\n",
    ]
    (root / "corpus.csv").write_text("".join(lines))
    return root


def test_rows_classes_and_columns(table: Path) -> None:
    corpus = prepare(table)
    frame = corpus.manifest.set_index("clip_id")
    assert corpus.name == "table" and corpus.classes == ("angry", "neutral", "sad")  # sorted, not first-seen
    assert len(frame) == 13 and frame.index.is_unique
    assert frame.loc["spk3/0001", ["speaker", "label", "label_index", "transcript", "gender"]].tolist() == ["spk3", "angry", 0, "Hello, 3", "f"]
    assert frame.loc["spk4/0000", "path"] == str(table / "spk4" / "0000.wav")
    absolute = frame[frame["label"] == "neutral"]
    assert len(absolute) == 1 and absolute["path"].iloc[0].endswith("elsewhere/0001.wav")
    assert absolute["transcript"].isna().all() and absolute["gender"].isna().all()
    assert (frame["sample_rate"] == 16_000).all()


def test_skips_are_counted_with_reasons(table: Path) -> None:
    skipped = prepare(table).skipped
    reasons = skipped["reason"].tolist()
    assert len(skipped) == 7
    assert "duplicate of row 2" in reasons and "file not found" in reasons
    assert reasons.count("unreadable row (more fields than the header)") == 1
    assert reasons.count("unreadable row (fewer fields than the header)") == 1
    assert {"empty label", "empty path"} <= set(reasons)
    by_path = dict(zip(skipped["path"], skipped["reason"]))
    assert by_path[str(table / "spk9" / "missing.wav")] == "file not found"
    assert by_path[f"{table / 'corpus.csv'}, row 18"] == "empty path"  # no file to name, so its line
    assert by_path[f"{table / 'corpus.csv'}, row 20"] == "unreadable row (fewer fields than the header)"
    assert str(table / "bad.wav") in by_path  # header does not read


def test_file_path_folder_and_csv_alias(table: Path) -> None:
    assert len(load_corpus(f"table:{table / 'corpus.csv'}").manifest) == 13
    assert len(load_corpus(f"csv:{table}").manifest) == 13
    assert "table" in available_corpora() and "csv" not in available_corpora()
    with pytest.raises(FileNotFoundError, match="corpus table not found"):
        prepare(table / "spk1")


def test_missing_column_names_the_file_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("Path, Speaker,emotion\na.wav,1,sad\n")
    with pytest.raises(ValueError, match=r"labels\.csv: missing required column 'label'"):
        prepare(bad)


def test_folds_group_by_speaker(table: Path) -> None:
    folds = folds_for(prepare(table).manifest, 5, seed=0)
    assert len(folds) == 5
    for f in folds:
        assert not (set(f.train) & set(f.test)) and not (set(f.val) & set(f.test)) and not (set(f.train) & set(f.val))
    assert sorted(s for f in folds for s in f.test) == [f"spk{s}" for s in range(1, 7)]
