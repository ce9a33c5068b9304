import logging
import subprocess
import sys
from pathlib import Path

from app.logging_setup import LOG_FILENAME, register_secret, setup_logging, tail

ROOT = Path(__file__).resolve().parents[2]


def test_log_file_format_and_secret_scrubbing(tmp_path):
    register_secret("super-secret-value-123")
    log_file = setup_logging("INFO", tmp_path / "logs", console=False)
    assert log_file == tmp_path / "logs" / LOG_FILENAME
    log = logging.getLogger("app.test")
    log.info("connecting with %s", "super-secret-value-123")
    log.warning("header APCA-API-KEY-ID: PK" "ABCDEFGHIJKLMNOP12")
    try:
        raise RuntimeError("auth failed for super-secret-value-123")
    except RuntimeError:
        log.exception("boom")
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text()
    assert "super-secret-value-123" not in text and "PK" "ABCDEFGHIJKLMNOP12" not in text
    assert " - INFO - app.test - connecting with ****" in text
    assert "RuntimeError: auth failed for ****" in text
    assert tail(log_file, 2)[-1].startswith("RuntimeError") or "boom" in "\n".join(tail(log_file, 5))
    setup_logging("WARNING", None, console=False)


def run_cli(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "main.py", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=env)


def test_config_command_prints_sources_and_masks_keys(tmp_path):
    import os

    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               APCA_API_KEY_ID="PK" "ZZZZZZZZZZZZZZZZ99", APCA_API_SECRET_KEY="my-very-secret-key",
               AUTOTRADER_DEMO_SPEED="90")
    r = run_cli("config", env=env)
    assert r.returncode == 0, r.stderr
    assert "PK" "ZZZZZZZZZZZZZZZZ99" not in r.stdout and "my-very-secret-key" not in r.stdout
    assert "env AUTOTRADER_DEMO_SPEED" in r.stdout and "90.0" in r.stdout
    assert "paper" in r.stdout


def test_bad_config_file_exits_with_message_not_traceback(tmp_path):
    import os

    cfg = tmp_path / "bad.toml"
    cfg.write_text("[demo]\nspeed = -5\n")
    env = dict(os.environ, HOME=str(tmp_path))
    r = run_cli("run", "--headless", "--config", str(cfg), env=env)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "demo.speed" in r.stderr and "line 2" in r.stderr


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("autotrader ")
