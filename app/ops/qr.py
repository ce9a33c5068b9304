"""The status page's address as a QR code, to scan with the phone (segno: pure Python).

- ``terminal_qr``: for ``autotrader status-url --qr`` over SSH (half-block characters, two
  rows a line), drawn for light text on a dark background, as most SSH terminals are (the
  light modules are the blocks); ``--qr-png FILE`` for anything else;
- ``png_data_uri`` / ``png_bytes``: for the Settings screen (a QML ``Image`` takes the data
  URI as its ``source``) or a file;
- ``matrix``: the modules as rows of booleans (True is dark), for a custom drawing.

The token is part of the address: the code is as secret as the token. It is made on demand,
never written to disk or to the log.
"""

from __future__ import annotations

import io
from typing import Any

ERROR_LEVEL = "m"  # 15 % of the code may be unreadable (a scratched or glared screen)
BORDER = 2  # quiet zone, in modules (the standard's 4 is more than phones need on a screen)


def _code(url: str) -> Any:
    import segno

    if not url:
        raise ValueError("no address to encode")
    return segno.make(url, error=ERROR_LEVEL, micro=False)


def matrix(url: str) -> list[list[bool]]:
    return [[bool(m) for m in row] for row in _code(url).matrix]


def terminal_qr(url: str) -> str:
    """Rows of half blocks (each character is two modules, upper and lower); the light
    modules and the quiet zone are the blocks (a terminal's light text on its dark ground)."""
    rows = matrix(url)
    size = len(rows)
    light = [False] * (size + 2 * BORDER)
    grid = [light] * BORDER + [[False] * BORDER + r + [False] * BORDER for r in rows] \
        + [light] * BORDER
    if len(grid) % 2:
        grid.append(light)
    chars = {(False, False): "\u2588", (True, True): " ", (True, False): "\u2584",
             (False, True): "\u2580"}  # (upper dark, lower dark): block shows the light part
    return "\n".join("".join(chars[(up, down)] for up, down in zip(grid[i], grid[i + 1],
                                                                   strict=True))
                     for i in range(0, len(grid), 2)) + "\n"


def png_bytes(url: str, scale: int = 8) -> bytes:
    buf = io.BytesIO()
    _code(url).save(buf, kind="png", scale=scale, border=BORDER)
    return buf.getvalue()


def png_data_uri(url: str, scale: int = 8) -> str:
    """``data:image/png;base64,...`` (a QML Image's ``source``)."""
    return str(_code(url).png_data_uri(scale=scale, border=BORDER))
