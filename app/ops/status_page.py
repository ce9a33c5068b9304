"""The read-only status page for a phone: a small threaded HTTP server (stdlib).

Off by default (``[status] enabled``). It binds to ``[status] bind`` (127.0.0.1 by default) and
``port``. Beyond loopback every request needs the token (``?token=...`` or the header
``Authorization: Bearer ...``): a long random string kept 0600 in ``<data>/status-token``
and printed by ``autotrader status-url``; wrong tokens are answered 403 and, after a few
from one address within a minute, 429. Pages: ``/`` (HTML) and ``/api/status`` (JSON, the same
data). Only GET and HEAD; nothing can change. No keys, PIN or notification URLs are in the
data; text from plugins (names, errors) is HTML-escaped.
"""

from __future__ import annotations

import argparse
import collections
import hmac
import html
import ipaddress
import json
import logging
import math
import os
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from db import performance as perf
from db.timeutil import iso_z, utcnow

logger = logging.getLogger(__name__)

TOKEN_FILE = "status-token"
MAX_BAD = 5          # wrong tokens per address per minute before 429
CACHE_SECONDS = 5.0  # the account (broker I/O) is read at most this often


def is_loopback(bind: str) -> bool:
    if bind in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False


def token_path(data_path: Path) -> Path:
    return Path(data_path) / TOKEN_FILE


def load_token(data_path: Path, create: bool = True) -> str | None:
    """The page's token: read from ``<data>/status-token`` or made (0600) the first time."""
    path = token_path(data_path)
    try:
        tok = path.read_text(encoding="utf-8").strip()
        if len(tok) >= 32:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return tok
    except OSError:
        pass
    if not create:
        return None
    Path(data_path).mkdir(parents=True, exist_ok=True)
    tok = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(tok + "\n")
    path.chmod(0o600)
    return tok


class RecentWarnings(logging.Handler):
    """The last ``size`` log records at WARNING and above, secrets scrubbed (the page's "last
    warnings"); attached to the root logger while the page runs."""

    def __init__(self, size: int = 10) -> None:
        super().__init__(logging.WARNING)
        self._items: collections.deque[dict[str, str]] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        from app.logging_setup import scrub

        try:
            text = scrub(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad log call must not break the page
            return
        self._items.append({"time": iso_z(utcnow()), "level": record.levelname,
                            "text": text[:300]})

    def items(self) -> list[dict[str, str]]:
        return list(self._items)


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def collect(engine: Any, account: dict[str, Any] | None,
            warnings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Everything the page shows (no secrets: only these fields are copied)."""
    algos = []
    for v in engine.algorithm_views():
        if v.status == "deleted":
            continue
        algos.append({"id": v.id, "name": v.name, "plugin": v.plugin, "ticker": v.ticker,
                      "status": v.status, "error": v.error, "position": _num(v.position),
                      "cash": _num(v.cash), "value": _num(v.value), "pnl": _num(v.pnl),
                      "pnl_pct": _num(v.pnl_pct), "last_price": _num(v.last_price),
                      "initial_capital": v.initial_capital})
    feed = getattr(engine, "feed", None)
    st = getattr(feed, "status", None)
    now = engine.clock.now()
    conn = engine.system.conn
    try:
        market_open = bool(engine.calendar.is_open(now.replace(second=0, microsecond=0)))
    except Exception:  # noqa: BLE001
        market_open = None
    acct = None
    if account is not None:
        acct = {k: _num(account.get(k)) for k in ("cash", "equity", "free")}
        acct.update({"halted": account.get("halted"), "storage": account.get("storage")})
    history = perf.history(conn, perf.ACCOUNT, limit=60)
    # "today" counts from the last close before today (after today's close its snapshot is
    # today's own row, which would make the day's change look like zero)
    from db.calendar import exchange_time

    today = exchange_time(now).date().isoformat()
    before_today = [r for r in history if r["day"] < today]
    return {
        "generated_at": iso_z(utcnow()),
        "mode": engine.mode,
        "clock": iso_z(now),
        "market_open": market_open,
        "stream": {"state": getattr(st, "state", "none"), "detail": getattr(st, "detail", "")},
        "account": acct,
        "today_pnl": (acct["equity"] - before_today[-1]["value"]
                      if acct and acct.get("equity") is not None and before_today else None),
        "algorithms": algos,
        "orders": perf.recent_orders(conn, 20),
        "warnings": list(warnings or []),
        "performance": {"account": history,
                        "algorithms": {a["id"]: perf.history(conn, a["id"], limit=10)
                                       for a in algos}},
    }


CSS = ("body{font:15px system-ui,sans-serif;margin:0 auto;max-width:720px;padding:8px;"
       "background:#111;color:#eee}table{border-collapse:collapse;width:100%;margin:6px 0}"
       "td,th{padding:3px 5px;border-bottom:1px solid #333;text-align:left;font-size:13px}"
       ".pos{color:#4c4}.neg{color:#e55}.err{color:#fa3}h2{font-size:16px;margin:14px 0 4px}"
       "tr:not(.line) td{border-bottom:none}td.note{padding-top:0;font-size:12px}"
       ".n{text-align:right;white-space:nowrap}.st-error,.st-paused{color:#e55}"
       ".st-stopped{color:#fa3}.st-running{color:#4c4}.trend svg{width:64px;height:14px}")


def _m(v: Any, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+,.2f}" if sign else f"{v:,.2f}"


def _cls(v: Any) -> str:
    return "" if not isinstance(v, int | float) or v == 0 else ("pos" if v > 0 else "neg")


def local_time(iso: Any, seconds: bool = False) -> str:
    """``2024-06-20T19:01:00Z`` -> ``06-20 15:01`` (New York, the market's time); unreadable:
    as given."""
    from db.calendar import exchange_time
    from db.timeutil import parse_iso

    try:
        t = exchange_time(parse_iso(str(iso)))
    except (ValueError, TypeError):
        return str(iso or "")
    return t.strftime("%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M")


def render(data: dict[str, Any]) -> str:
    from app.ops.charts import sparkline_svg

    e = html.escape
    acct = data["account"] or {}
    rows = []
    algo_days = data["performance"]["algorithms"]
    for a in data["algorithms"]:
        line = "" if a["error"] else ' class="line"'
        trend = sparkline_svg([r["value"] for r in algo_days.get(a["id"], [])], width=64,
                              height=14, label=f'{a["name"]}: value, daily')
        trend = f'<br><span class="trend">{trend}</span>' if trend else ""
        rows.append(f'<tr{line}><td>#{a["id"]} {e(a["name"])}</td><td>{e(a["ticker"])}</td>'
                    f'<td class="st-{e(a["status"])}">{e(a["status"])}</td>'
                    f'<td class="n">{a["position"]:g}</td><td class="n">{_m(a["value"])}{trend}</td>'
                    f'<td class="n {_cls(a["pnl"])}">{_m(a["pnl"], True)}</td></tr>')
        if a["error"]:  # the whole width: a long reason stays readable on a phone
            rows.append(f'<tr class="line"><td colspan="6" class="err note">'
                        f'{e(str(a["error"]))}</td></tr>')
    orders = [f'<tr><td>{e(local_time(o["minute"]))}</td><td>{e(str(o["name"] or ""))}</td>'
              f'<td>{e(o["side"])} {o["qty"]} {e(o["ticker"])}</td><td>{e(str(o["status"]))}'
              f'</td></tr>' for o in data["orders"]]
    days = data["performance"]["account"][-21:]
    hist = []
    for i, r in enumerate(days):
        prev = days[i - 1] if i else None
        change = r["value"] - prev["value"] if prev else None
        hist.insert(0, f'<tr><td>{e(r["day"])}</td><td>{_m(r["value"])}</td>'
                       f'<td class="{_cls(change)}">{_m(change, True)}</td>'
                       f'<td>{r["trades"]}</td></tr>')
    warned = "".join(f'<tr><td>{e(local_time(w["time"], True))}</td><td class="err">'
                     f'{e(w["text"])}</td></tr>' for w in reversed(data["warnings"]))
    spark = sparkline_svg([r["value"] for r in data["performance"]["account"]],
                          label="account value, daily")
    stream = data["stream"]
    market = {True: "open", False: "closed", None: "?"}[data["market_open"]]
    warn = "".join(f'<p class="err">{e(str(acct[k]))}</p>' for k in ("halted", "storage")
                   if acct.get(k))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="30"><title>AutoTrader status</title>
<style>{CSS}</style></head><body>
<h1 style="font-size:18px">AutoTrader {e(str(data["mode"]).upper())}</h1>
<p>Account {_m(acct.get("equity"))} &middot; cash {_m(acct.get("cash"))} &middot; today
<span class="{_cls(data["today_pnl"])}">{_m(data["today_pnl"], True)}</span><br>
Market {market} &middot; stream {e(stream["state"])} {e(stream["detail"] or "")}<br>
<small>{e(local_time(data["clock"], True))} New York time (updated every 30 s;
read-only)</small></p>{warn}
<h2>Algorithms</h2><table><tr class="line"><th>Name</th><th>Ticker</th><th>Status</th>
<th class="n">Pos.</th><th class="n">Value</th><th class="n">P&amp;L</th></tr>{"".join(rows)}</table>
<h2>Recent orders</h2><table><tr><th>Minute (NY)</th><th>Algorithm</th><th>Order</th>
<th>Status</th></tr>{"".join(orders)}</table>
<h2>Last warnings</h2><table>{warned or "<tr><td>none</td></tr>"}</table>
<h2>Performance (daily, after the close)</h2>{spark}<table><tr><th>Day</th><th>Account</th>
<th>Change</th><th>Trades</th></tr>{"".join(hist)}</table>
</body></html>"""


class StatusServer:
    def __init__(self, engine: Any, settings: Any, *, port: int | None = None,
                 bind: str | None = None, require_token: bool | None = None) -> None:
        self.engine = engine
        self.bind = bind or settings.status.bind
        self.port = settings.status.port if port is None else port
        self.need_token = (not is_loopback(self.bind) if require_token is None
                           else require_token)
        self.token = load_token(settings.data_path) if self.need_token else None
        self._bad: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._account: tuple[float, dict[str, Any] | None] = (0.0, None)
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.warnings = RecentWarnings()

    # --- access ------------------------------------------------------------------------
    def allowed(self, client: str, given: str | None) -> int:
        """200, 403 (wrong or missing token) or 429 (too many wrong ones lately)."""
        if not self.need_token:
            return 200
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._bad.get(client, []) if now - t < 60]
            self._bad[client] = recent
            if len(recent) >= MAX_BAD:
                return 429
            assert self.token is not None
            if given and hmac.compare_digest(given.encode(), self.token.encode()):
                return 200
            recent.append(now)
            if len(self._bad) > 1000:  # bounded
                self._bad = {client: recent}
        logger.warning("status page: a request from %s with a wrong or no token", client)
        return 403

    def account(self) -> dict[str, Any] | None:
        at, acct = self._account
        if time.monotonic() - at < CACHE_SECONDS:
            return acct
        try:
            acct = self.engine.account_summary()
        except Exception as e:  # noqa: BLE001 - the page shows the rest
            logger.info("status page: account not read: %s", e)
            acct = None
        self._account = (time.monotonic(), acct)
        return acct

    def start(self) -> StatusServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "AutoTrader"
            sys_version = ""

            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug("status page: %s", (fmt % args).split("?", 1)[0])

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("X-Frame-Options", "DENY")
                self.send_header("Content-Security-Policy",
                                 "default-src 'none'; style-src 'unsafe-inline'")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                given = (parse_qs(url.query).get("token") or [None])[0]
                auth = self.headers.get("Authorization", "")
                if auth.lower().startswith("bearer "):
                    given = auth[7:].strip()
                code = outer.allowed(self.client_address[0], given)
                if code != 200:
                    msg = b"too many wrong tokens; wait a minute\n" if code == 429 else \
                        b"a valid token is needed (autotrader status-url)\n"
                    self._send(code, msg, "text/plain; charset=utf-8")
                    return
                if url.path not in ("/", "/api/status"):
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")
                    return
                try:
                    data = collect(outer.engine, outer.account(), outer.warnings.items())
                except Exception:  # noqa: BLE001
                    logger.exception("status page failed")
                    self._send(500, b"internal error (see the log)\n", "text/plain")
                    return
                if url.path == "/api/status":
                    self._send(200, json.dumps(data, default=str).encode(), "application/json")
                else:
                    self._send(200, render(data).encode(), "text/html; charset=utf-8")

            do_HEAD = do_GET  # noqa: N815

            def _refuse(self) -> None:
                self._send(405, b"read-only\n", "text/plain")

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in self.bind else socket.AF_INET

        self.httpd = Server((self.bind.strip("[]"), self.port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="status-page",
                                        daemon=True)
        self._thread.start()
        logging.getLogger().addHandler(self.warnings)
        logger.info("status page on http://%s:%d/ (%s)", self.bind, self.port,
                    "token needed" if self.need_token else "loopback only")
        return self

    def close(self) -> None:
        logging.getLogger().removeHandler(self.warnings)
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def status_url(settings: Any) -> str:
    s = settings.status
    host = f"[{s.bind}]" if ":" in s.bind and not s.bind.startswith("[") else s.bind
    url = f"http://{host}:{s.port}/"
    if not is_loopback(s.bind):
        url += f"?token={load_token(settings.data_path)}"
    return url


def main(argv: list[str]) -> int:
    """``autotrader status-url``: the page's address with its token (it is made if needed)."""
    from app.cliargs import add_common_options as _common
    from app.cliargs import settings_from_args

    p = argparse.ArgumentParser(prog="autotrader status-url",
                                description="Print the status page's address (with its token).")
    _common(p)
    p.add_argument("--mode", choices=["auto", "demo", "paper", "live"])
    p.add_argument("--qr", action="store_true",
                   help="also draw it as a QR code to scan with the phone (dark terminal)")
    p.add_argument("--qr-png", metavar="FILE", help="write the QR code as a PNG (0600)")
    args = p.parse_args(argv[1:] if argv and argv[0] == "status-url" else argv)
    settings = settings_from_args(args)
    url = status_url(settings)
    print(url)
    if args.qr or args.qr_png:
        from app.ops import qr

        if args.qr:
            sys.stdout.write(qr.terminal_qr(url))
        if args.qr_png:
            out = Path(args.qr_png).expanduser()
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the token
            with os.fdopen(fd, "wb") as f:
                f.write(qr.png_bytes(url))
            print(f"QR code written to {out} (it holds the token: delete it once scanned)",
                  file=sys.stderr)
    if is_loopback(settings.status.bind):
        print("note: the page listens on this machine only (127.0.0.1): from the phone, set "
              "[status] bind to this machine's LAN address, or use an SSH tunnel",
              file=sys.stderr)
    if not settings.status.enabled:
        print("note: the status page is off; set [status] enabled = true and restart",
              file=sys.stderr)
    return 0
