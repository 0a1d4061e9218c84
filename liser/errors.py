"""One error hierarchy: every failure a user can cause is a :class:`LiserError`.

The CLI turns any ``LiserError`` into one line (the message names the file or field and the
fix) and the class's exit code, with no traceback unless ``--debug``. Anything else is a bug
and keeps its traceback. Subclasses also keep the builtin base they always had (``ValueError``,
``LookupError``, ...) so that callers catching those still work.
"""

from __future__ import annotations

from pathlib import Path


class LiserError(Exception):
    """A failure the user can fix; ``str(exc)`` says what and how."""

    exit_code = 1
    kind = "error"


class ConfigError(LiserError, ValueError):
    """A configuration that cannot be used; the message names the field and the allowed values."""

    exit_code = 2
    kind = "config"


class StudyError(ConfigError):
    """A study file that cannot be run; the message names the file, the field and the fix."""

    kind = "study"


class DataError(LiserError, ValueError):
    """A corpus, fold file or feature cache that cannot be used."""

    exit_code = 3
    kind = "data"


class InputNotFound(DataError, FileNotFoundError):
    """A file or folder the command needs is not there."""


class TeacherError(LiserError, ValueError):
    """A teacher that cannot be fitted or loaded; the message names the input and the fix."""

    exit_code = 4
    kind = "teacher"


class TeacherFileError(TeacherError):
    """A teacher-output file that cannot be used; the message names the file and the fix."""


class CheckpointError(TeacherError, RuntimeError):
    """A model checkpoint that cannot be loaded; the message says what to do."""


class TrackingError(LiserError, RuntimeError):
    """A tracking URI that cannot be used: unreachable server, unknown scheme, not a database."""

    exit_code = 5
    kind = "tracking"


class StudyNotFound(TrackingError, LookupError):
    """A study the tracking store does not hold (or holds without any finished trial)."""


class ReportError(TrackingError, ValueError):
    """Runs that cannot make the asked-for table or figure (e.g. a fraction curve from a study without fractions)."""

    kind = "report"


class ClusterError(LiserError, RuntimeError):
    """A Ray address that cannot be joined."""

    exit_code = 6
    kind = "cluster"


class TrainingDiverged(LiserError, RuntimeError):
    """The loss became NaN or infinite; the fold cannot produce a usable student."""

    exit_code = 7
    kind = "training"


class MediaError(Exception):
    """A media file whose audio or frames cannot be used; ``reason`` says why in a few words.

    Not a :class:`LiserError`: one bad clip is a counted, reported skip of its corpus, never a
    failed command (``liser data check`` lists them).
    """

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {reason}" if path is not None else reason)


__all__ = [
    "LiserError", "ConfigError", "StudyError", "DataError", "InputNotFound", "TeacherError", "TeacherFileError",
    "CheckpointError", "TrackingError", "StudyNotFound", "ReportError", "ClusterError", "TrainingDiverged",
    "MediaError",
]

