"""The notifier's retries go through the broker boundary's one policy (app/broker/retry.py):
real apprise posting to a loopback HTTP receiver (``json://``) that answers 500 at first."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.ops.notify import Notifier
from tests.waiting import wait_until


class FlakyReceiver:
    """Answers 500 to the first ``fail`` POSTs, then 200."""

    def __init__(self, fail: int) -> None:
        self.fail, self.posts, self.ok = fail, 0, 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts += 1
                good = outer.posts > outer.fail
                outer.ok += good
                self.send_response(200 if good else 500)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("fail", "retries", "posts", "delivered"), [
    (2, 3, 3, True),    # two 500s, the third try takes it
    (9, 3, 3, False),   # never: exactly `retries` tries, then given up
    (9, 1, 1, False),   # retries=1 (the `notify --test` command): one try
])
def test_a_failed_send_is_tried_the_policy_s_attempts(fail, retries, posts, delivered,
                                                      caplog) -> None:
    rx = FlakyReceiver(fail)
    n = Notifier([rx.url], batch_seconds=0, min_interval=0, retries=retries, retry_wait=0.05)
    try:
        with caplog.at_level(logging.INFO):
            assert n.send("AAA filled", "10 @ 1.00")
            wait_until(lambda: n.sent or any("not delivered" in r.getMessage()
                                              for r in caplog.records), 15)
    finally:
        n.close()
        rx.close()
    assert rx.posts == posts and n.sent == int(delivered) == rx.ok
    assert n.policy.attempts == retries
    # This notifier's message only (caplog also hears other tests' leftover threads).
    gave_up = [r for r in caplog.records
               if "not delivered" in r.getMessage() and "AAA filled" in r.getMessage()]
    assert bool(gave_up) != delivered
    if gave_up:
        assert f"after {posts} tries" in gave_up[0].getMessage()
