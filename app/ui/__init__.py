"""The Qt side: windows, QML view models, charts, QThread workers."""

import os

# pyqtgraph binds to the first Qt it finds; Debian's python3-pyqtgraph pulls PyQt5/PyQt6 in
# beside PySide6 (the Pi install), so name ours before anything imports pyqtgraph.
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
