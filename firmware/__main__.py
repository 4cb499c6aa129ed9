"""``python -m firmware``: see :mod:`firmware.cli`."""

import sys

from .cli import main

sys.exit(main())
