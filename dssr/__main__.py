"""``python -m dssr``: the same as the ``dssr`` command."""

import sys

from dssr.cli import main

sys.exit(main())
