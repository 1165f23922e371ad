"""``python -m scratchdl``: the same as the `scratchdl` command."""

import sys

from scratchdl.cli import main

sys.exit(main())
