"""One setting written into the real config file (Settings' rotation): everything else kept,
the result parsed before it replaces the file, read back by the config loader."""

from __future__ import annotations

import stat

import pytest

from app.config import load_settings
from app.config_write import ConfigWriteError, set_value

MINE = """# my notes
mode = "demo"   # demo for now

[ui]
idle_lock_seconds = 120  # two minutes
rotation = 0             # the Pi's panel

[risk]
algo_max_drawdown_pct = 20.0
"""


def test_replaces_the_line_and_keeps_the_rest(tmp_path):
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text(MINE)
    cfg.chmod(0o600)
    set_value(cfg, "ui", "rotation", 90)
    text = cfg.read_text()
    assert text == MINE.replace("rotation = 0             #", "rotation = 90             #")
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    s = load_settings(cfg, env={})
    assert s.ui.rotation == 90 and s.ui.idle_lock_seconds == 120
    assert s.risk.algo_max_drawdown_pct == 20.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".autotrader-")]


def test_adds_the_key_or_the_section_or_the_file(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text("[ui]\nidle_lock_seconds = 60\n")
    set_value(cfg, "ui", "rotation", 180)
    assert load_settings(cfg, env={}).ui.rotation == 180
    cfg.write_text('mode = "demo"\n')
    set_value(cfg, "ui", "rotation", 270)
    assert load_settings(cfg, env={}).ui.rotation == 270
    new = tmp_path / "sub" / "new.toml"
    set_value(new, "ui", "rotation", 90)
    assert load_settings(new, env={}).ui.rotation == 90
    assert stat.S_IMODE(new.stat().st_mode) == 0o600


@pytest.mark.parametrize(("text", "says"), [
    ("[ui\nrotation = 0\n", "not valid TOML"),
    ("ui.rotation = 0\n", "in another form"),
    ("ui = { rotation = 0 }\n", "in another form"),
])
def test_refuses_what_it_cannot_place_and_leaves_the_file(tmp_path, text, says):
    cfg = tmp_path / "a.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigWriteError, match=says):
        set_value(cfg, "ui", "rotation", 90)
    assert cfg.read_text() == text
