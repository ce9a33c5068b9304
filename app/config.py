"""Typed configuration: defaults < TOML file < environment < command-line flags.

The file lives in the platform's config folder (``autotrader.toml``). Environment variables are
Alpaca's usual ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` and ``AUTOTRADER_<SECTION>_<KEY>``
(``AUTOTRADER_MODE``, ``AUTOTRADER_DEMO_SPEED``, ...). Every effective value remembers where it
came from so ``autotrader config`` can say so; secrets print masked.

A malformed or invalid file raises ``ConfigError`` naming the file, the line and the key: the
app never starts trading on a half-read config.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from app.typedvalue import ValueTypeError, parse_typed, unwrap_optional

APP_NAME = "autotrader"
CONFIG_FILENAME = "autotrader.toml"
MODES = ("auto", "demo", "paper", "live")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


class Secret(str):
    """A string that never shows itself in repr/str formatting of the config."""

    def masked(self) -> str:
        return "" if not self else "****" + (self[-2:] if len(self) > 12 else "")

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"


@dataclass(frozen=True)
class AlpacaSettings:
    key_id: Secret = Secret("")
    secret_key: Secret = Secret("")
    # Overrides point the app at the loopback emulator (tests, manual runs); empty = Alpaca's.
    trading_url: str = ""
    data_url: str = ""
    stream_url: str = ""
    trade_stream_url: str = ""
    feed: str = "iex"
    backfill_days: int = 5


@dataclass(frozen=True)
class DemoSettings:
    speed: float = 60.0
    seed: int = 42
    tickers: tuple[str, ...] = ("AAPL", "MSFT", "NVDA")
    starting_cash: float = 100_000.0
    # Session to start the simulated day in ("" = the most recent completed session).
    start_date: str = ""
    # Scheduled stock splits, "TICKER:YYYY-MM-DD:RATIO" (10 = 10-for-1, 1:10 = reverse).
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineSettings:
    plugin_timeout: float = 2.0
    tick_offset_seconds: float = 2.0
    slippage_bps: float = 1.0
    commission_per_share: float = 0.0
    plugin_dir: str = ""
    # An order whose minute is older than this (market time) when it is about to be sent is
    # cancelled as stale, never sent.
    stale_order_seconds: float = 30.0
    # Free space of the data folder's disk, checked at start and every few minutes: a warning
    # below ``disk_warn_mb``, trading paused below ``disk_pause_mb`` until space is back.
    disk_warn_mb: float = 500.0
    disk_pause_mb: float = 20.0
    disk_check_minutes: float = 5.0
    # Memory a plugin worker process may allocate (MB, its data segment); past it a plugin's
    # allocation fails with MemoryError in that call. 0: no limit.
    plugin_memory_mb: float = 1024.0


@dataclass(frozen=True)
class RiskSettings:
    """Risk guards (app/engine/guards.py; README "Safety"). 0 turns a limit off."""

    algo_max_daily_loss: float = 0.0
    algo_max_daily_loss_pct: float = 10.0
    algo_max_drawdown_pct: float = 25.0
    algo_max_order_value: float = 0.0
    algo_max_orders_per_day: int = 100
    account_max_daily_loss: float = 0.0
    account_max_daily_loss_pct: float = 5.0
    account_max_minute_order_value: float = 0.0
    account_max_minute_order_pct: float = 100.0
    on_guard_stop: str = "keep"
    reject_cooldown_minutes: int = 5
    max_rejections: int = 3


@dataclass(frozen=True)
class UiSettings:
    idle_lock_seconds: int = 300
    kiosk: bool = False
    # The Pi kiosk's picture and touch, degrees clockwise (0, 90, 180, 270); when set it wins
    # over the rotation lines of /etc/autotrader/autotrader.env (app/ops/display.py guard).
    rotation: int = 0
    # The Performance screen's buy-and-hold reference (its bars come from the market DB).
    performance_reference: str = "SPY"


@dataclass(frozen=True)
class NotifySettings:
    """Notifications through apprise (README "Operating it from anywhere"). ``urls`` hold
    tokens: secrets, masked everywhere."""

    urls: tuple[str, ...] = field(default=(), repr=False)
    fills: bool = False
    failures: bool = True  # an algorithm failing, paused or stopped by a guard
    rejected: bool = True
    stop_all: bool = True
    crash: bool = True  # started after an unclean shutdown
    daily_summary: bool = True
    stream_down_minutes: float = 5.0  # 0: never


@dataclass(frozen=True)
class StatusSettings:
    """The read-only status page (off by default; loopback unless ``bind`` says otherwise)."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 8765


@dataclass(frozen=True)
class MarketSettings:
    keep_days: int = 0  # minute bars older than this many days are pruned daily; 0: keep all


@dataclass(frozen=True)
class Settings:
    mode: str = "auto"
    data_dir: str = ""
    log_dir: str = ""
    log_level: str = "INFO"
    alpaca: AlpacaSettings = field(default_factory=AlpacaSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    market: MarketSettings = field(default_factory=MarketSettings)
    # Where each dotted key's value came from: "default", "file <path> line N", "env X", "cli".
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    config_path: str = ""

    # --- derived ------------------------------------------------------------------------
    @property
    def has_keys(self) -> bool:
        return bool(self.alpaca.key_id and self.alpaca.secret_key)

    @property
    def effective_mode(self) -> str:
        if self.mode == "auto":
            return "paper" if self.has_keys else "demo"
        return self.mode

    @property
    def data_path(self) -> Path:
        """The data folder. By default one per mode (``.../autotrader/demo``, ``/paper``,
        ``/live``) so a demo's simulated algorithms and bars never meet a real account."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return Path(platformdirs.user_data_dir(APP_NAME)) / self.effective_mode

    @property
    def log_path(self) -> Path:
        return Path(self.log_dir) if self.log_dir else Path(platformdirs.user_log_dir(APP_NAME))

    @property
    def system_db_path(self) -> Path:
        return self.data_path / "system.db"

    @property
    def market_db_path(self) -> Path:
        return self.data_path / "market.db"

    @property
    def plugin_dirs(self) -> list[Path]:
        return [Path(self.engine.plugin_dir).expanduser()] if self.engine.plugin_dir else []


SECTIONS: dict[str, type] = {
    "alpaca": AlpacaSettings,
    "demo": DemoSettings,
    "engine": EngineSettings,
    "ui": UiSettings,
    "risk": RiskSettings,
    "notify": NotifySettings,
    "status": StatusSettings,
    "market": MarketSettings,
}
SECRET_KEYS = {"alpaca.key_id", "alpaca.secret_key", "notify.urls"}
ENV_ALIASES = {"APCA_API_KEY_ID": "alpaca.key_id", "APCA_API_SECRET_KEY": "alpaca.secret_key"}


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILENAME


def _field_types() -> dict[str, Any]:
    """Dotted key -> (type annotation string, default) for every setting."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name in ("sources", "config_path"):
            continue
        if f.name in SECTIONS:
            for sf in dataclasses.fields(SECTIONS[f.name]):
                out[f"{f.name}.{sf.name}"] = sf
        else:
            out[f.name] = f
    return out


FIELDS = _field_types()


def _resolved_types() -> dict[str, Any]:
    """Dotted key -> the field's type as an object (annotations are text here: ``from
    __future__ import annotations``), so ``float | None`` reads as a float."""
    hints = typing.get_type_hints(Settings)
    out: dict[str, Any] = {}
    for key in FIELDS:
        section, _, name = key.partition(".")
        out[key] = typing.get_type_hints(SECTIONS[section])[name] if name else hints[key]
    return out


TYPES = _resolved_types()


def _coerce(key: str, value: Any, origin: str) -> Any:
    """Convert a raw value (TOML value or env string) to the field's type or say why not."""
    typ = unwrap_optional(TYPES[key])
    try:
        if typ is Secret:
            if not isinstance(value, str):
                raise ValueTypeError("a string", value)
            return Secret(value.strip())
        if typ is str and not isinstance(value, str):
            raise ValueTypeError("a string", value)
        if typ in (bool, int, float, str) or typ is tuple or typing.get_origin(typ) is tuple:
            return parse_typed(typ, value)
    except ValueTypeError as e:
        raise ConfigError(f"{origin}: key '{key}': expected {e.expected} (got {value!r})") \
            from None
    raise ConfigError(f"{origin}: key '{key}': unsupported type {typ}")


# Key -> is the value in range (after its type was checked).
RANGE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "demo.speed": lambda v: 0 < v <= 10_000,
    "engine.plugin_timeout": lambda v: 0 < v <= 60,
    "engine.tick_offset_seconds": lambda v: 0 <= v < 50,
    "engine.slippage_bps": lambda v: 0 <= v <= 1000,
    "engine.commission_per_share": lambda v: 0 <= v <= 10,
    "engine.stale_order_seconds": lambda v: 5 <= v <= 600,
    "engine.disk_warn_mb": lambda v: 0 <= v <= 1e7,
    "engine.disk_pause_mb": lambda v: 0 <= v <= 1e7,
    "engine.disk_check_minutes": lambda v: 0 < v <= 1440,
    "engine.plugin_memory_mb": lambda v: v == 0 or 64 <= v <= 1_000_000,
    "demo.starting_cash": lambda v: 0 < v <= 1e12,
    "alpaca.backfill_days": lambda v: 1 <= v <= 3650,
    "ui.idle_lock_seconds": lambda v: 0 <= v <= 86_400,
    "ui.rotation": lambda v: v in (0, 90, 180, 270),
    "ui.performance_reference": lambda v: re.fullmatch(r"[A-Z][A-Z.]{0,9}", v) is not None,
    **{key: (lambda v: v >= 0) for key, typ in TYPES.items()
       if key.startswith("risk.") and unwrap_optional(typ) in (float, int)},
    "risk.max_rejections": lambda v: v >= 1,
    "risk.on_guard_stop": lambda v: v in ("keep", "sell"),
    "notify.stream_down_minutes": lambda v: 0 <= v <= 1440,
    "status.port": lambda v: 1 <= v <= 65535,
    "market.keep_days": lambda v: v == 0 or 7 <= v <= 36_500,
}


def _validate(values: dict[str, Any], origins: dict[str, str]) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{origins.get(key, 'default')}: key '{key}': {why}")

    if values.get("mode", "auto") not in MODES:
        raise bad("mode", f"must be one of {', '.join(MODES)}, got {values['mode']!r}")
    level = str(values.get("log_level", "INFO")).upper()
    if level not in LOG_LEVELS:
        raise bad("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
    values["log_level"] = level
    for key, ok in RANGE_CHECKS.items():
        if key in values and not ok(values[key]):
            raise bad(key, f"value {values[key]!r} is out of range")
    _check_addresses(values, bad)
    _check_demo(values, bad)
    _check_engine_pairs(values, bad)
    if values.get("data_dir"):
        why = data_dir_problem(Path(str(values["data_dir"])).expanduser())
        if why:
            raise bad("data_dir", why)


def _check_addresses(values: dict[str, Any], bad: Callable[[str, str], ConfigError]) -> None:
    bind = str(values.get("status.bind", StatusSettings.bind))
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]{1,253}", bind):
        raise bad("status.bind", "must be an IP address or host name (e.g. 192.168.1.20)")
    for u in values.get("notify.urls", ()):
        if "://" not in u:
            raise bad("notify.urls", "each entry must be an apprise URL (scheme://...)")
    if values.get("alpaca.feed", "iex") not in ("iex", "sip", "delayed_sip"):
        # The stream's v2 feeds; history for delayed_sip is fetched as sip minus 15 minutes.
        raise bad("alpaca.feed", "must be iex, sip or delayed_sip")
    for key, schemes in (("alpaca.trading_url", ("http://", "https://")),
                         ("alpaca.data_url", ("http://", "https://")),
                         ("alpaca.stream_url", ("ws://", "wss://")),
                         ("alpaca.trade_stream_url", ("ws://", "wss://"))):
        url = str(values.get(key) or "")
        if url and (not url.startswith(schemes) or "@" in url.split("/", 3)[2]):
            raise bad(key, f"must be a {' or '.join(schemes)} URL without credentials in it")
        if key in ("alpaca.trading_url", "alpaca.data_url") and url.rstrip("/").endswith("/v2"):
            raise bad(key, "must not end in /v2 (alpaca-py adds it)")


def _check_demo(values: dict[str, Any], bad: Callable[[str, str], ConfigError]) -> None:
    for t in values.get("demo.tickers", ()):
        if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}", t):
            raise bad("demo.tickers", f"{t!r} is not a ticker symbol")
    for sp in values.get("demo.splits", ()):
        if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}:\d{4}-\d{2}-\d{2}:[\d.]+([:/-][\d.]+)?", sp):
            raise bad("demo.splits", f"{sp!r}: expected TICKER:YYYY-MM-DD:RATIO "
                      "(e.g. NVDA:2024-06-10:10, or 1:10 for a reverse split)")
    start = values.get("demo.start_date")
    if start:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", start):
            raise bad("demo.start_date", f"must be a date YYYY-MM-DD, got {start!r}")
        try:
            day = datetime.strptime(start, "%Y-%m-%d").date()
        except ValueError as e:
            raise bad("demo.start_date", f"{start!r} is not a real date ({e})") from None
        today = datetime.now(UTC).date()
        if day > today:
            raise bad("demo.start_date", f"{start} is in the future")
        if day.year < 2000:
            raise bad("demo.start_date", f"{start} is before 2000 (the market calendar's range)")


def _check_engine_pairs(values: dict[str, Any], bad: Callable[[str, str], ConfigError]) -> None:
    offset = values.get("engine.tick_offset_seconds", EngineSettings.tick_offset_seconds)
    stale = values.get("engine.stale_order_seconds", EngineSettings.stale_order_seconds)
    if stale <= offset:
        raise bad("engine.stale_order_seconds",
                  f"{stale:g} s must be more than engine.tick_offset_seconds ({offset:g} s), "
                  "or every order would be stale")
    warn = values.get("engine.disk_warn_mb", EngineSettings.disk_warn_mb)
    pause = values.get("engine.disk_pause_mb", EngineSettings.disk_pause_mb)
    if pause > warn:
        raise bad("engine.disk_pause_mb", f"{pause:g} must not be more than "
                  f"engine.disk_warn_mb ({warn:g})")


def data_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the data folder (without creating anything), or None."""
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a folder; choose another data folder"
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            return f"{path} is not writable by this user; fix its owner or choose another"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{path} cannot be created: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {parent} is not writable by this user"
    return None


def _line_of(text: str, section: str | None, key: str) -> int | None:
    """Line number of ``key = ...`` inside ``[section]`` (or the top level) of a TOML text."""
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.fullmatch(r"\[\s*([A-Za-z0-9_.-]+)\s*\]", s)
        if m:
            current = m.group(1)
            continue
        if current == section and re.match(rf"{re.escape(key)}\s*=", s):
            return n
    return None


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}

    def take(section: str | None, key: str, value: Any) -> None:
        """One key of the file (top level or in ``[section]``), checked and read."""
        dotted = f"{section}.{key}" if section else key
        line = _line_of(text, section, key)
        origin = f"{path} line {line}" if line else str(path)
        if dotted not in FIELDS:
            raise ConfigError(f"{origin}: unknown key '{dotted}'")
        origins[dotted] = origin
        values[dotted] = _coerce(dotted, value, origin)

    for k, v in data.items():
        if not isinstance(v, dict):
            take(None, k, v)
        elif k not in SECTIONS:
            raise ConfigError(f"{path}: unknown section [{k}] (known: {', '.join(SECTIONS)})")
        else:
            for sk, sv in v.items():
                take(k, sk, sv)
    if any(k in SECRET_KEYS and values[k] for k in values):
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path}: holds API keys but others can read it (mode {stat.filemode(mode)}); "
                f"run: chmod 600 {path}"
            )
    return values, origins


def env_name(key: str) -> str:
    return "AUTOTRADER_" + key.replace(".", "_").upper()


def load_settings(
    path: str | Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the effective settings. ``path=None`` uses ``$AUTOTRADER_CONFIG`` or the default."""
    env = dict(os.environ if env is None else env)
    if path is None:
        path = env.get("AUTOTRADER_CONFIG") or default_config_path()
    path = Path(path).expanduser()
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path.exists():
        values, origins = _read_file(path)
    elif env.get("AUTOTRADER_CONFIG") or overrides and overrides.get("_explicit_config"):
        raise ConfigError(f"{path}: config file not found")
    for name, key in ENV_ALIASES.items():
        if env.get(name):
            values[key] = _coerce(key, env[name], f"env {name}")
            origins[key] = f"env {name}"
    for key in FIELDS:
        name = env_name(key)
        if name in env and name != "AUTOTRADER_CONFIG":
            values[key] = _coerce(key, env[name], f"env {name}")
            origins[key] = f"env {name}"
    for key, v in (overrides or {}).items():
        if key.startswith("_") or v is None:
            continue
        if key not in FIELDS:
            raise ConfigError(f"command line: unknown setting '{key}'")
        values[key] = _coerce(key, v, "command line")
        origins[key] = "command line"
    _validate(values, origins)

    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, v in values.items():
        if "." in key:
            s, k = key.split(".", 1)
            sections[s][k] = v
        else:
            top[key] = v
    sources = {k: origins.get(k, "default") for k in FIELDS}
    settings = Settings(
        **top,
        **{s: SECTIONS[s](**kv) for s, kv in sections.items()},
        sources=sources,
        config_path=str(path),
    )
    if settings.mode in ("paper", "live") and not settings.has_keys:
        raise ConfigError(
            f"{sources['mode']}: key 'mode': mode {settings.mode!r} needs Alpaca API keys "
            "(set APCA_API_KEY_ID and APCA_API_SECRET_KEY)"
        )
    return settings


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(key, shown value, source) for every setting; secrets masked."""
    rows: list[tuple[str, str, str]] = []
    for key in FIELDS:
        if "." in key:
            s, k = key.split(".", 1)
            v = getattr(getattr(settings, s), k)
        else:
            v = getattr(settings, key)
        if key in SECRET_KEYS and isinstance(v, tuple):
            shown = f"({len(v)} set) ****" if v else "(not set)"
        elif key in SECRET_KEYS:
            shown = "(set) " + Secret(v).masked() if v else "(not set)"
        elif isinstance(v, tuple):
            shown = ", ".join(v)
        else:
            shown = str(v)
        rows.append((key, shown, settings.sources.get(key, "default")))
    rows.append(("(effective mode)", settings.effective_mode, "derived"))
    rows.append(("(data folder)", str(settings.data_path), "derived"))
    rows.append(("(log folder)", str(settings.log_path), "derived"))
    return rows


EXAMPLE_CONFIG = """\
# AutoTrader configuration. Environment variables override this file
# (APCA_API_KEY_ID, APCA_API_SECRET_KEY, AUTOTRADER_<SECTION>_<KEY>), flags override both.
mode = "auto"          # auto (paper with keys, demo without), demo, paper, live
log_level = "INFO"
# data_dir = "/path/to/data"

[alpaca]
# key_id = "..."       # prefer the environment; if set here: chmod 600 this file
# secret_key = "..."
feed = "iex"
backfill_days = 5

[demo]
speed = 60.0
tickers = ["AAPL", "MSFT", "NVDA"]

[engine]
plugin_timeout = 2.0
# plugin_dir = "~/autotrader-plugins"
# stale_order_seconds = 30.0   # an order older than this when about to leave is cancelled
# disk_warn_mb = 500.0         # warn below this much free disk; trading pauses below
# disk_pause_mb = 20.0         # ... this, until space is back (checked every few minutes)
# plugin_memory_mb = 1024.0    # memory a plugin worker process may allocate (0: no limit)

[ui]
idle_lock_seconds = 300

[risk]                 # README "Safety"; 0 turns a limit off
algo_max_daily_loss_pct = 10.0     # an algorithm down 10 % of its capital today stops
algo_max_drawdown_pct = 25.0       # ... or 25 % below its peak value
algo_max_orders_per_day = 100
account_max_daily_loss_pct = 5.0   # all algorithms together down 5 % today: stop all
on_guard_stop = "keep"             # keep | sell the position of a guard-stopped algorithm

[notify]               # apprise URLs hold tokens: chmod 600 this file
# urls = ["ntfys://topic", "tgram://bottoken/chatid"]
# fills = false
# stream_down_minutes = 5.0

[status]               # read-only status page; a token is needed beyond 127.0.0.1
enabled = false
bind = "127.0.0.1"
port = 8765

[market]
keep_days = 0          # prune minute bars older than this (daily); 0 keeps everything
"""


def finite_number(minimum: float | None = None, *, positive: bool = False):  # type: ignore[no-untyped-def]
    """An argparse ``type``: a finite number (not nan/inf), optionally >= ``minimum`` or > 0.
    argparse turns its ValueError into a one-line usage error with exit code 2."""
    import argparse
    import math

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if positive and v <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum:g}")
        return v

    return parse
