"""``python -m liser.cli``: the ``liser`` command."""

import sys

from liser.cli import main

sys.exit(main())
