"""The read-only status page with a real HTTP client on 127.0.0.1, over a real demo engine
(in-process) and over the running headless app (a subprocess) with notifications to a
loopback apprise ``json://`` receiver, the daily snapshot, ``algo history`` and ``report``."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from app.config import load_settings
from app.ops.status_page import StatusServer, load_token, token_path
from tests.control.conftest import env_for
from tests.ops.test_notify import Receiver
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert('x')</script>&"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def short_dir():
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="ats"))  # a Unix socket path holds ~100 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def engine(tmp_path: Path):
    from app.engine.runner import build_engine

    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(tmp_path / "d"), "AUTOTRADER_DEMO_START_DATE": "2024-06-04",
        "APCA_API_KEY_ID": "", "AUTOTRADER_NOTIFY_URLS": "json://127.0.0.1:9/hook-token"})
    eng, _ = build_engine(settings)
    eng.create_algorithm("sma_crossover", "AAPL", 1000.0, name=EVIL)
    yield eng, settings
    eng.close()
    eng.system.close()
    eng.market.close()


def test_token_refused_accepted_rate_limited_and_text_escaped(engine) -> None:
    eng, settings = engine
    srv = StatusServer(eng, settings, bind="127.0.0.1", port=0, require_token=True).start()
    try:
        token = load_token(settings.data_path)
        assert token and len(token) >= 32
        assert token_path(settings.data_path).stat().st_mode & 0o777 == 0o600
        base = f"http://127.0.0.1:{srv.port}"
        assert get(base + "/")[0] == 403
        code, body = get(base + f"/?token={token}")
        assert code == 200
        assert EVIL not in body
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in body
        code, body = get(base + "/api/status", {"Authorization": f"Bearer {token}"})
        assert code == 200
        data = json.loads(body)
        assert data["mode"] == "demo" and data["algorithms"][-1]["name"] == EVIL
        assert data["account"]["equity"] > 0
        for secret in ("hook-token", token):
            assert secret not in body
        assert get(base + f"/?token={token}", method="POST")[0] in (403, 405)
        for _ in range(4):  # with the first request's missing token: 5 wrong in a minute
            assert get(base + "/?token=wrong")[0] == 403
        assert get(base + "/?token=wrong")[0] == 429
        assert get(base + f"/?token={token}")[0] == 429  # this address waits a minute
    finally:
        srv.close()


def test_loopback_needs_no_token_and_nothing_changes(engine) -> None:
    eng, settings = engine
    srv = StatusServer(eng, settings, bind="127.0.0.1", port=0).start()
    try:
        base = f"http://127.0.0.1:{srv.port}"
        before = [(v.id, v.status) for v in eng.algorithm_views()]
        assert get(base + "/")[0] == 200
        for m in ("POST", "PUT", "DELETE"):
            assert get(base + "/api/status", method=m)[0] == 405
        assert get(base + "/nope")[0] == 404
        assert [(v.id, v.status) for v in eng.algorithm_views()] == before
        assert not token_path(settings.data_path).exists()  # loopback: no token made
    finally:
        srv.close()


def test_last_warnings_scrubbed_escaped_and_the_account_sparkline(engine) -> None:
    import logging

    from app.logging_setup import register_secret
    from app.ops.performance import take_snapshot

    eng, settings = engine
    for day in ("2024-05-30", "2024-05-31", "2024-06-03"):  # three closes: a line to draw
        take_snapshot(eng, date.fromisoformat(day))
    register_secret("sekrit-value-123")
    srv = StatusServer(eng, settings, bind="127.0.0.1", port=0).start()
    try:
        logging.getLogger("app.engine.tick").warning("order refused for %s: key sekrit-value-123",
                                                     EVIL)
        logging.getLogger("app.engine.tick").info("an info line is not a warning")
        base = f"http://127.0.0.1:{srv.port}"
        code, body = get(base + "/")
        assert code == 200
        assert "order refused for &lt;script&gt;" in body and EVIL not in body
        assert "sekrit-value-123" not in body and "an info line" not in body
        assert "<svg" in body and "<polyline" in body and "<script" not in body
        data = json.loads(get(base + "/api/status")[1])
        assert [w["level"] for w in data["warnings"]] == ["WARNING"]
    finally:
        srv.close()
    logging.getLogger("x").warning("after close")
    assert all("after close" not in w["text"] for w in srv.warnings.items())


def _run(base: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


def test_running_app_page_summary_history_report_crash_and_data(short_dir: Path) -> None:
    receiver = Receiver()
    port = free_port()
    cfg = short_dir / "c.toml"
    cfg.write_text(f'[status]\nenabled = true\nport = {port}\n[notify]\n'
                   f'urls = ["{receiver.url}"]\n[market]\nkeep_days = 0\n')
    cfg.chmod(0o600)
    env = env_for(short_dir, AUTOTRADER_CONFIG=str(cfg), AUTOTRADER_DEMO_SPEED="5000")
    try:
        # 1. a whole simulated session (390 ticks): the page while it runs, then the close
        log = open(short_dir / "app.out", "w")  # noqa: SIM115
        p = subprocess.Popen([sys.executable, "main.py", "run", "--headless", "--minutes",
                              "392"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        def status() -> dict | None:
            assert p.poll() is None, (short_dir / "app.out").read_text()[-2000:]
            try:
                code, body = get(f"http://127.0.0.1:{port}/api/status")
            except (urllib.error.URLError, ConnectionError):
                return None
            return json.loads(body) if code == 200 and json.loads(body)["algorithms"] else None

        page = wait_until(status, 60, what="the status page listing the algorithms",
                          interval=0.1)
        assert {a["ticker"] for a in page["algorithms"]} == {"AAPL", "MSFT", "NVDA"}
        assert page["stream"]["state"]
        assert p.wait(timeout=120) == 0
        assert not (short_dir / "d" / "running").exists()  # a clean close
        assert receiver.wait(1, timeout=20)
        summary = [m for m in receiver.posts if "day 2024-06-04" in m["title"]]
        assert summary and "Account" in summary[0]["message"]
        chart = summary[0]["attachments"][0]  # the small chart (json:// takes attachments)
        assert chart["mimetype"] == "image/png" and chart["filename"] == "day-2024-06-04.png"
        assert base64.b64decode(chart["base64"])[:8] == b"\x89PNG\r\n\x1a\n"
        logs = "".join(f.read_text() for f in (short_dir / "log").glob("*.log*"))
        assert "hook-secret-token" not in logs + (short_dir / "app.out").read_text()

        # 2. the snapshot, by the command line
        r = _run(short_dir, env, "algo", "history", "0", "--json")
        rows = json.loads(r.stdout)
        assert [x["day"] for x in rows] == ["2024-06-04"] and rows[0]["taken"] == "close"
        r = _run(short_dir, env, "report", "--since", "2024-06-01", "--json")
        rep = json.loads(r.stdout)
        assert {x["algo_id"] for x in rep} == {0, 1, 2, 3}
        assert all(x["period"] == "2024-W23" for x in rep)
        assert sum(x["trades"] for x in rep if x["algo_id"]) == next(
            x["trades"] for x in rep if x["algo_id"] == 0)

        # 3. killed (no clean close): the next start says so
        receiver.posts.clear()
        log = open(short_dir / "app2.out", "w")  # noqa: SIM115
        p = subprocess.Popen([sys.executable, "main.py", "run", "--headless"], cwd=ROOT,
                             env=env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        wait_until((short_dir / "d" / "running").exists, 60, what="the running marker",
                   interval=0.1)
        time.sleep(0.5)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        log = open(short_dir / "app3.out", "w")  # noqa: SIM115
        p = subprocess.Popen([sys.executable, "main.py", "run", "--headless", "--minutes", "2"],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        assert p.wait(timeout=90) == 0
        assert receiver.wait(1, timeout=20)
        assert any("after a crash" in (m["title"] + m["message"]) for m in receiver.posts)

        # 4. data export and prune on the same market DB
        out = short_dir / "aapl.csv"
        r = _run(short_dir, env, "data", "export", "AAPL", "--csv", str(out))
        assert r.returncode == 0, r.stderr
        lines = out.read_text().splitlines()
        assert lines[0] == "timestamp,open,high,low,close,volume" and len(lines) > 390
        r = _run(short_dir, env, "data", "prune", "--before", "2024-06-04")
        assert r.returncode == 0 and "bars before 2024-06-04 deleted" in r.stdout
        r = _run(short_dir, env, "data", "list", "--json")
        assert all(x["first"] >= "2024-06-04" for x in json.loads(r.stdout))
    finally:
        receiver.close()


def test_the_page_in_a_real_browser_engine(engine, tmp_path: Path) -> None:
    """Headless Chromium, where installed (``apt-get install chromium``): the page loads under
    its own Content-Security-Policy, the inline chart is drawn, no script runs."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium on this machine")
    from app.ops.performance import take_snapshot

    eng, settings = engine
    for day in ("2024-05-30", "2024-05-31", "2024-06-03"):
        take_snapshot(eng, date.fromisoformat(day))
    srv = StatusServer(eng, settings, bind="127.0.0.1", port=0, require_token=True).start()
    try:
        token = load_token(settings.data_path)
        url = f"http://127.0.0.1:{srv.port}/?token={token}"
        shot = tmp_path / "phone.png"
        args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=390,844"]
        dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True,
                             timeout=90)
        assert "AutoTrader DEMO" in dom.stdout, dom.stderr[-2000:]
        assert "<polyline" in dom.stdout and "Demo SMA AAPL" in dom.stdout
        assert "&lt;script&gt;" in dom.stdout  # the hostile name, as text
        subprocess.run([*args, f"--screenshot={shot}", url], capture_output=True,
                       timeout=90)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        bad = subprocess.run([*args, "--dump-dom", url.replace(token, "wrong")],
                             capture_output=True, text=True, timeout=90)
        assert "a valid token is needed" in bad.stdout and "AutoTrader DEMO" not in bad.stdout
    finally:
        srv.close()


def test_today_counts_from_the_last_close_before_today(engine) -> None:
    from app.ops.performance import take_snapshot
    from app.ops.status_page import collect
    from db import performance as perf

    eng, _ = engine
    take_snapshot(eng, date(2024, 6, 3))
    acct = eng.account_summary()
    yesterday = perf.history(eng.system.conn, perf.ACCOUNT)[-1]["value"]
    # today's own snapshot (after today's close) must not become the base: the day's change
    # would read as zero
    perf.record_day(eng.system.conn, [{**perf.history(eng.system.conn, perf.ACCOUNT)[-1],
                                       "day": "2024-06-04", "value": 1.0}])
    data = collect(eng, acct, [])
    assert data["today_pnl"] == pytest.approx(acct["equity"] - yesterday)
