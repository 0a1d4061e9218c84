"""Any labeled corpus listed in a CSV file: ``table:PATH`` (or ``csv:PATH``).

For corpora without an adapter of their own. ``PATH`` is the CSV file itself or a
folder holding ``corpus.csv``::

    path,speaker,label,transcript,gender
    spk01/0001.wav,spk01,angry,"Kids are talking by the door",female
    /data/other/0002.flac,spk02,neutral,,male

==========  ========  =========================================================
path        required  audio file, relative to the CSV's folder or absolute
speaker     required  speaker id; folds group by it (speaker-independent)
label       required  class name, as written (surrounding spaces removed)
transcript  optional  what is said, kept as a column
gender      optional  kept as a column, lower-cased; folds balance it
==========  ========  =========================================================

Column names are matched ignoring case and surrounding spaces; other columns
are ignored. A missing required column stops with an error naming the file and
the column.

``classes`` are the labels of the usable rows, *sorted*, so reordering the rows
never reorders the classes (and a class whose files are all missing does not
become an empty class). ``clip_id`` is the ``path`` cell as written, without its
suffix (``spk01/0001``), so the same file name in two speaker folders is two
clips. Folds are dealt by speaker (:func:`liser.folds.make_folds`).

Skipped with the reason: rows with more or fewer fields than the header, an
empty path, speaker or label, a file that does not exist or whose header does
not read, and the same path listed twice (the first row is kept). A row's
``path`` in the skipped table is the audio file where there is one, else
``<csv>, row N`` (N is the line in the file; the header is line 1).
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePath

from liser.audio import AudioError, audio_info
from liser.corpora.manifest import Corpus, SkipFile, make_manifest, make_skips
from liser.errors import DataError, InputNotFound

DEFAULT_FILE = "corpus.csv"
REQUIRED = ("path", "speaker", "label")
OPTIONAL = ("transcript", "gender")


def prepare(root: Path) -> Corpus:
    """Read the CSV at ``root`` (a ``.csv`` file, or a folder holding ``corpus.csv``) into a manifest."""
    root = Path(root).expanduser().resolve()
    csv_path = root / DEFAULT_FILE if root.is_dir() else root
    if not csv_path.is_file():
        raise InputNotFound(f"corpus table not found: {csv_path} (give a .csv file or a folder holding {DEFAULT_FILE})")
    rows: list[dict] = []
    skips: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for line, cells in _read_rows(csv_path):
        has_path = isinstance(cells, dict) and cells["path"].strip()
        where = str(_resolve(cells["path"], csv_path.parent)) if has_path else f"{csv_path}, row {line}"
        try:
            if isinstance(cells, str):
                raise SkipFile(cells)
            row = _describe(cells, csv_path.parent)
        except (SkipFile, AudioError) as err:
            skips.append((where, err.reason))
            continue
        if row["clip_id"] in seen:
            skips.append((row["path"], f"duplicate of row {seen[row['clip_id']]}"))
            continue
        seen[row["clip_id"]] = line
        rows.append(row)
    classes = tuple(sorted({r["label"] for r in rows}))
    for r in rows:
        r["label_index"] = classes.index(r["label"])
    return Corpus(name="table", root=csv_path, classes=classes, manifest=make_manifest(rows), skipped=make_skips(skips))


def _read_rows(csv_path: Path):
    """(line number, {column: cell}) per data row, or (line, reason) for a row that does not parse."""
    try:
        handle = csv_path.open(newline="", encoding="utf-8-sig")
        with handle:
            reader = csv.reader(handle)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise DataError(
                    f"{csv_path}: missing required column {missing[0]!r}"
                    + (f" (and {', '.join(map(repr, missing[1:]))})" if missing[1:] else "")
                    + f"; it has {header}, and needs {list(REQUIRED)} (optional {list(OPTIONAL)})"
                )
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield reader.line_num, f"unreadable row ({exc})"
                    continue
                if not any(c.strip() for c in cells):
                    continue  # blank line
                if len(cells) != len(header):
                    more = "more" if len(cells) > len(header) else "fewer"
                    yield reader.line_num, f"unreadable row ({more} fields than the header)"
                    continue
                yield reader.line_num, dict(zip(header, cells))
    except UnicodeDecodeError as exc:
        raise DataError(f"{csv_path}: not UTF-8 text ({exc}); save it as UTF-8") from exc


def _describe(cells: dict[str, str], folder: Path) -> dict:
    for col in REQUIRED:
        if not cells[col].strip():
            raise SkipFile(f"empty {col}")
    written = cells["path"].strip()
    path = _resolve(written, folder)
    if not path.is_file():
        raise SkipFile("file not found")
    info = audio_info(path)
    row = {
        "clip_id": PurePath(written).with_suffix("").as_posix(),
        "path": str(path),
        "speaker": cells["speaker"].strip(),
        "label": cells["label"].strip(),
        "duration": info.duration,
        "sample_rate": info.sample_rate,
        "video_path": None,
    }
    if "gender" in cells:
        row["gender"] = cells["gender"].strip().lower() or None
    if "transcript" in cells:
        row["transcript"] = cells["transcript"].strip() or None
    return row


def _resolve(written: str, folder: Path) -> Path:
    path = Path(written.strip()).expanduser()
    return path if path.is_absolute() else folder / path
