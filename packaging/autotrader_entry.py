"""Entry point of the PyInstaller bundle: the same as the ``autotrader`` command."""

import multiprocessing
import sys

if __name__ == "__main__":
    # Plugins run in worker processes (forkserver): in a frozen app the fork server and its
    # children are this same executable, which must hand them to multiprocessing first.
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
