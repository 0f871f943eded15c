"""Run the ``geargevent`` command: ``python -m geargevent --help``.

The console script ``geargevent`` that the package installs calls :func:`main`.
"""

from __future__ import annotations

import sys

from geargevent.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
