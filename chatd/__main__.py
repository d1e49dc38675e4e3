"""``python -m chatd`` is the ``chatd`` command."""

from __future__ import annotations

import sys

from chatd.cli import main

sys.exit(main())
