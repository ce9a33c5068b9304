"""Entry point of the PyInstaller bundle: the same as the ``autotrader`` command."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
