"""Print AutoTrader's runtime requirements minus the Qt stack, one per line.

The Pi install takes PySide6 and pyqtgraph from Debian (eglfs-capable builds) and everything
else from PyPI: ``python3 packaging/requirements_without_qt.py pyproject.toml``.
"""

from __future__ import annotations

import re
import sys
import tomllib

FROM_DEBIAN = ("pyside6", "shiboken6", "pyqtgraph")


def requirements(pyproject: str) -> list[str]:
    with open(pyproject, "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    out = []
    for d in deps:
        name = re.split(r"[<>=!~ ;\[]", d.strip(), maxsplit=1)[0].lower().replace("_", "-")
        if not name.startswith(FROM_DEBIAN):
            out.append(d.strip())
    return out


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
