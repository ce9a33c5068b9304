"""Notifications through real apprise to a loopback HTTP receiver (apprise's ``json://``)."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.ops.notify import EngineNotifications, Notifier, mask_url
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    def __init__(self, delay: float = 0.0) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.arrived = 0  # POSTs begun (before the handler's delay)
        self.got = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.arrived += 1
                time.sleep(delay)  # a slow target: the sender must not wait for it
                outer.posts.append(json.loads(body))
                outer.paths.append(self.path)
                outer.got.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook-secret-token"

    def wait(self, n: int, timeout: float = 15) -> bool:
        """True once ``n`` messages arrived; fails the test after ``timeout`` s."""
        return wait_until(lambda: len(self.posts) >= n, timeout,
                          what=f"{n} notification(s) at the receiver") is True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_burst_is_one_message_and_send_never_blocks(receiver: Receiver) -> None:
    n = Notifier([receiver.url], batch_seconds=0.5, min_interval=0)
    t0 = time.perf_counter()
    for i in range(100):
        assert n.send(f"fill {i}", f"AAPL buy {i}")
    assert time.perf_counter() - t0 < 0.5
    assert receiver.wait(1)
    assert n.close()  # the worker has ended: whatever was queued has been delivered
    assert len(receiver.posts) == 1
    msg = receiver.posts[0]
    assert msg["title"] == "AutoTrader: 100 events"
    assert "fill 0: AAPL buy 0" in msg["message"] and "fill 24: AAPL buy 24" in msg["message"]
    # a phone shows the first lines; the rest is counted, not listed (targets cut long bodies)
    assert "fill 25:" not in msg["message"] and "... and 75 more" in msg["message"]
    assert receiver.paths[0].endswith("/hook-secret-token")


def test_a_slow_target_does_not_block_the_sender() -> None:
    slow = Receiver(delay=2.0)
    try:
        # One try a message: the closing below must not wait out retries of what was in flight.
        n = Notifier([slow.url], batch_seconds=0, min_interval=0, retries=1)
        n.send("one", "x")
        wait_until(lambda: slow.arrived == 1)  # the worker is now inside the slow POST
        t0 = time.perf_counter()
        for i in range(500):  # more than the queue holds: the rest is dropped, not waited for
            n.send(f"m{i}", "x")
        assert time.perf_counter() - t0 < 0.5
        assert n.dropped > 0
        assert slow.wait(1)
    finally:
        # What is still queued is not this test's subject: dropped, so the worker does not go
        # on sending it (and logging "not delivered") into later tests of this process.
        with contextlib.suppress(queue.Empty):
            while True:
                n._q.get_nowait()
        slow.close()
        assert n.close(timeout=30)  # ends as soon as the worker does (a few seconds)


def test_rate_limited_spacing(receiver: Receiver) -> None:
    n = Notifier([receiver.url], batch_seconds=0, min_interval=1.5)
    n.send("a", "1")
    assert receiver.wait(1)
    t1 = time.monotonic()
    n.send("b", "2")
    n.send("c", "3")
    assert receiver.wait(2)
    assert time.monotonic() - t1 >= 1.2  # waited for the interval, and merged b and c
    assert receiver.posts[1]["title"] == "AutoTrader: 2 events"
    n.close()


def test_masking() -> None:
    assert mask_url("ntfys://user:pw@ntfy.sh/mytopic") == "ntfys://****@ntfy.sh/****"
    assert mask_url("tgram://123:abc/456") == "tgram://123:abc/****" or "abc" not in mask_url(
        "tgram://123:abc/456")
    assert "token" not in mask_url("json://127.0.0.1:8080/hook-secret-token")


def test_engine_events_reach_the_phone(receiver: Receiver, tmp_path: Path) -> None:
    import tempfile

    from app.config import load_settings
    from app.engine.runner import build_engine

    d = Path(tempfile.mkdtemp(prefix="atn"))
    s = load_settings(overrides={"data_dir": str(d / "d"), "mode": "demo",
                                 "demo.start_date": "2024-06-04"})
    engine, _ = build_engine(s)
    try:
        engine.start()
        n = Notifier([receiver.url], batch_seconds=0.2, min_interval=0)
        events = EngineNotifications(engine, n, stream_minutes=0.0001)  # 6 ms; 0 is never
        engine.add_listener(events)
        engine.stop_algorithm(1, reason="risk guard: daily loss over 10 %")
        assert receiver.wait(1)
        msg = receiver.posts[0]
        assert "Demo SMA AAPL (AAPL) stopped" in msg["title"]
        assert "risk guard" in msg["message"] and msg["type"] == "failure"
        engine.stop_algorithm(2)  # a plain stop by the owner: no message
        events.on_stream_status(False, "connection refused")
        time.sleep(0.05)
        events.on_stream_status(False, "connection refused")
        assert receiver.wait(2)
        assert receiver.posts[1]["title"] == "Market data stream down"
        assert n.close()  # everything queued delivered: the plain stop said nothing
        assert len(receiver.posts) == 2
    finally:
        engine.close()
        engine.system.close()
        engine.market.close()


def test_notify_test_command(receiver: Receiver, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "main.py", "notify", "--test", "--url", receiver.url],
                       cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "test message sent to json://127.0.0.1" in r.stdout
    assert "hook-secret-token" not in r.stdout + r.stderr
    assert receiver.posts[0]["title"] == "AutoTrader test"


def test_notify_test_uses_the_configured_targets(receiver: Receiver, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "main.py", "notify", "--test"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "no notification target" in r.stderr
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[notify]\nurls = ["{receiver.url}"]\n')
    cfg.chmod(0o600)
    r = subprocess.run([sys.executable, "main.py", "notify", "--test", "--config", str(cfg)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert receiver.posts[0]["title"] == "AutoTrader test"
    assert "hook-secret-token" not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "main.py", "notify", "--test", "--url", "nope://x"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "did not recognise nope://" in r.stderr


def test_a_failure_in_a_burst_of_fills_comes_first(receiver: Receiver) -> None:
    n = Notifier([receiver.url], batch_seconds=0.5, min_interval=0)
    for i in range(40):
        n.send(f"fill {i}", "AAPL buy 1")
    n.send("Demo SMA AAPL (AAPL) error", "plugin crashed", "failure")
    assert receiver.wait(1)
    n.close()
    msg = receiver.posts[0]
    assert msg["message"].startswith("- Demo SMA AAPL (AAPL) error: plugin crashed")
    assert msg["type"] == "failure" and "and 16 more" in msg["message"]


def test_registered_secrets_never_leave_in_a_message(receiver: Receiver) -> None:
    from app.logging_setup import register_secret

    fake_key = "PK" "SECRETKEYVALUE123"  # a made-up key, built so no key-shaped string is tracked
    register_secret(fake_key)
    n = Notifier([receiver.url], batch_seconds=0, min_interval=0)
    n.send("broker error", f"401 for key {fake_key} at " + receiver.url)
    assert receiver.wait(1)
    n.close()
    msg = receiver.posts[0]["message"]
    assert fake_key not in msg and "hook-secret-token" not in msg
    assert "401 for key" in msg
