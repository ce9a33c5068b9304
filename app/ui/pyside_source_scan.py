"""Keep PySide6's import hook from caching the source of every module the app imports.

Since PySide6 6.4 (PYSIDE-2029) an import hook asks, for each newly imported module, whether
its source mentions "PySide6" (to scope ``from __feature__ import ...``). It asks through
``inspect.getsource``, which leaves each module's full text in ``linecache`` for the life of
the process: ~650 modules and ~40 MB of small strings in this app (numpy, pandas, pyqtgraph,
the engine), which the kiosk pays for months and which cannot be given back later (small
strings sit in pymalloc arenas shared with live objects).

The same question is answered here by reading the file's bytes, with no cache. The hook is
PySide's private code, so this is defensive: if its shape changes, nothing is patched.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def install() -> bool:
    """Replace the hook's source reader; True if it was found and replaced."""
    feature: Any = sys.modules.get("shibokensupport.feature")
    original = getattr(feature, "_mod_uses_pyside", None)
    if original is None or getattr(original, "_reads_file", False):
        return False

    def mod_uses_pyside(module: ModuleType) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return bool(original(module))  # built-ins, zips, extensions: PySide's own answer
        try:
            with open(path, "rb") as f:
                return b"PySide6" in f.read()
        except OSError:
            return bool(original(module))

    mod_uses_pyside._reads_file = True  # type: ignore[attr-defined]
    feature._mod_uses_pyside = mod_uses_pyside
    return True
