"""The ``liser`` command: a thin layer over plain functions that tests call directly.

One module per command group; each command parses its options, calls one library
function and prints. Checks live in the library, once (STYLE.md, issue 15).
"""

from __future__ import annotations

from liser.cli.app import main
from liser.cli.apps import demo_cmd, export_cmd, ui_cmd
from liser.cli.data import data, model_cmd
from liser.cli.report import report
from liser.cli.study import study
from liser.cli.teacher import teacher
from liser.cli.train import train_cmd

for command in (data, model_cmd, train_cmd, teacher, study, report, demo_cmd, ui_cmd, export_cmd):
    main.add_command(command)

__all__ = ["main"]
