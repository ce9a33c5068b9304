import os
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, Secret, describe, load_settings


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    p = tmp_path / "autotrader.toml"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_defaults_without_file_mean_demo(tmp_path):
    s = load_settings(tmp_path / "missing.toml", env={})
    assert s.effective_mode == "demo"
    assert s.demo.speed == 60.0
    assert s.sources["demo.speed"] == "default"


def test_file_env_and_cli_precedence_with_sources(tmp_path):
    p = write(tmp_path, 'log_level = "debug"\n[demo]\nspeed = 120\ntickers = ["SPY"]\n')
    s = load_settings(p, env={"AUTOTRADER_DEMO_SPEED": "240"}, overrides={"log_level": "WARNING"})
    assert s.demo.speed == 240.0
    assert s.sources["demo.speed"] == "env AUTOTRADER_DEMO_SPEED"
    assert s.demo.tickers == ("SPY",)
    assert s.sources["demo.tickers"] == f"{p} line 4"
    assert s.log_level == "WARNING" and s.sources["log_level"] == "command line"


def test_alpaca_env_keys_select_paper_and_are_masked(tmp_path):
    env = {"APCA_API_KEY_ID": "PK" "ABCDEFGHIJKLMNOPQR", "APCA_API_SECRET_KEY": "s3cr3t-value-xyz-123"}
    s = load_settings(tmp_path / "none.toml", env=env)
    assert s.effective_mode == "paper"
    shown = "\n".join(f"{k} {v} {src}" for k, v, src in describe(s))
    assert "PK" "ABCDEFGHIJKLMNOPQR" not in shown and "s3cr3t-value-xyz-123" not in shown
    assert "(set)" in shown
    assert "PK" "ABCDEFGHIJKLMNOPQR" not in repr(s)


def test_malformed_toml_names_file_and_line(tmp_path):
    p = write(tmp_path, 'mode = "demo"\n[demo]\nspeed = = 3\n')
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={})
    assert str(p) in str(e.value) and "line 3" in str(e.value)


@pytest.mark.parametrize(
    "text, key, line",
    [
        ('[demo]\nspeed = "fast"\n', "demo.speed", 2),
        ('mode = "yolo"\n', "mode", 1),
        ('[engine]\n\nplugin_timeout = -1\n', "engine.plugin_timeout", 3),
        ('[demo]\ntickers = ["aapl"]\n', "demo.tickers", 2),
        ('[ui]\nkiosk = "maybe"\n', "ui.kiosk", 2),
    ],
)
def test_invalid_values_name_key_and_line(tmp_path, text, key, line):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={})
    msg = str(e.value)
    assert f"'{key}'" in msg and f"line {line}" in msg and str(p) in msg


def test_unknown_key_and_section_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'demo.sped'"):
        load_settings(write(tmp_path, "[demo]\nsped = 3\n"), env={})
    with pytest.raises(ConfigError, match=r"unknown section \[dmeo\]"):
        load_settings(write(tmp_path, "[dmeo]\nspeed = 3\n"), env={})


def test_bad_env_value_names_variable(tmp_path):
    with pytest.raises(ConfigError, match="env AUTOTRADER_DEMO_SPEED"):
        load_settings(tmp_path / "none.toml", env={"AUTOTRADER_DEMO_SPEED": "abc"})


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_key_file_readable_by_others_is_refused(tmp_path):
    p = write(tmp_path, '[alpaca]\nkey_id = "PKX"\nsecret_key = "abc"\n', mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_settings(p, env={})
    p.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert load_settings(p, env={}).has_keys


def test_paper_without_keys_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="needs Alpaca API keys"):
        load_settings(tmp_path / "none.toml", env={"AUTOTRADER_MODE": "paper"})


def test_secret_repr_is_masked():
    assert "hunter2" not in repr(Secret("hunter2"))


def test_plugin_memory_limit_default_range_and_off(tmp_path: Path):
    none = tmp_path / "none.toml"
    assert load_settings(none, env={}).engine.plugin_memory_mb == 1024.0
    assert load_settings(none, env={"AUTOTRADER_ENGINE_PLUGIN_MEMORY_MB": "0"}
                         ).engine.plugin_memory_mb == 0  # no limit
    with pytest.raises(ConfigError, match="engine.plugin_memory_mb.*out of range"):
        load_settings(none, env={"AUTOTRADER_ENGINE_PLUGIN_MEMORY_MB": "10"})
