"""The status page's address as a QR code: the terminal drawing is the code's own modules,
the PNG is a real PNG of the right size, and ``status-url --qr`` prints both address and code
(the token only where the page needs one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.ops import qr

ROOT = Path(__file__).resolve().parents[2]
URL = "http://192.168.1.20:8765/?token=" + "A" * 43


def test_terminal_drawing_is_the_codes_modules() -> None:
    m = qr.matrix(URL)
    assert len(m) == len(m[0]) >= 21 and any(any(r) for r in m)
    lines = qr.terminal_qr(URL).splitlines()
    # back from half blocks to modules: a block's light halves are the light modules
    upper = {"\u2588": False, " ": True, "\u2584": True, "\u2580": False}
    lower = {"\u2588": False, " ": True, "\u2584": False, "\u2580": True}
    grid = []
    for line in lines:
        grid.append([upper[c] for c in line])
        grid.append([lower[c] for c in line])
    b = qr.BORDER
    inner = [row[b:b + len(m)] for row in grid[b:b + len(m)]]
    assert inner == m
    assert all(not any(row) for row in grid[:b])  # the quiet zone is light
    # three finder patterns: the top-left corner's 7x7 ring is dark
    assert all(m[0][:7]) and all(m[6][:7]) and all(r[0] for r in m[:7])


def test_png_and_data_uri() -> None:
    data = qr.png_bytes(URL, scale=4)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    assert width == (len(qr.matrix(URL)) + 2 * qr.BORDER) * 4
    assert qr.png_data_uri(URL).startswith("data:image/png;base64,")
    with pytest.raises(ValueError):
        qr.matrix("")


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    e.update(HOME=str(tmp_path / "h"), XDG_CONFIG_HOME=str(tmp_path / "h"),
             AUTOTRADER_DATA_DIR=str(tmp_path / "d"), **env)
    return subprocess.run([sys.executable, "main.py", "status-url", *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=60)


def test_status_url_qr_command(tmp_path: Path) -> None:
    r = _run(tmp_path, "--qr")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "http://127.0.0.1:8765/" and "token" not in r.stdout
    assert "\u2588" in lines[1] and "SSH tunnel" in r.stderr
    png = tmp_path / "qr.png"
    r = _run(tmp_path, "--qr-png", str(png), AUTOTRADER_STATUS_BIND="192.168.1.20")
    assert r.returncode == 0
    token = (tmp_path / "d" / "status-token").read_text().strip()
    assert r.stdout.strip() == f"http://192.168.1.20:8765/?token={token}"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_mode & 0o777 == 0o600
    assert token not in r.stderr
