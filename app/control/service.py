"""Control requests applied to an engine (running or not) with the engine's own checks.

A request is a dict ``{"cmd": ..., ...}``; the answer ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. Every change is logged as made "from the command line".
The engine's listeners (the window's bridge) hear each change as they do for the UI's.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

from app.control.guards import GuardRequests
from app.engine.model import EngineError

logger = logging.getLogger(__name__)

SOURCE = "from the command line"
CHANGES = ("add", "stop", "resume", "delete", "stop_all", "guards_set")
READS = ("ping", "list", "show", "account", "guards", "guards_check")
MAX_NAME = 60  # characters: a card's title, a table's cell


class RequestError(ValueError):
    """A malformed request (not a refusal by the engine)."""


def view_dict(view: Any) -> dict[str, Any]:
    d = dataclasses.asdict(view)
    for k, v in list(d.items()):
        if isinstance(v, float) and not math.isfinite(v):
            d[k] = None
    return d


def _algo_id(req: dict[str, Any]) -> int:
    v = req.get("id")
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise RequestError("an algorithm id is needed")
    try:
        return int(v)
    except ValueError:
        raise RequestError(f"{v!r} is not an algorithm id") from None


class ControlService(GuardRequests):  # guards, guards_check, guards_set
    def __init__(self, engine: Any, *, running: bool = True) -> None:
        self.engine = engine
        self.running = running  # False: the app is not running, the DB is changed directly

    def handle(self, req: Any) -> dict[str, Any]:
        """Apply one request; never raises (the error is in the answer)."""
        try:
            if not isinstance(req, dict):
                raise RequestError("a request is a JSON object")
            cmd = req.get("cmd")
            fn = getattr(self, f"do_{cmd}", None) if cmd in CHANGES + READS else None
            if fn is None:
                raise RequestError(f"unknown command {cmd!r}")
            out = fn(req)
            return {"ok": True, **out}
        except (EngineError, RequestError) as e:
            if isinstance(req, dict) and req.get("cmd") in CHANGES:
                logger.warning("%s: %s refused: %s", SOURCE, req.get("cmd"), e)
            return {"ok": False, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - a bug must not take the channel down
            logger.exception("control request %r failed", req)
            return {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}

    # --- reads ---------------------------------------------------------------------------
    def do_ping(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"mode": self.engine.mode, "running": self.running}

    def do_account(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"account": self.engine.account_summary()}

    def do_list(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"mode": self.engine.mode, "running": self.running,
                "algorithms": [view_dict(v) for v in self.engine.algorithm_views()]}

    def do_show(self, req: dict[str, Any]) -> dict[str, Any]:
        algo_id = _algo_id(req)
        view = self.engine.algorithm_view(algo_id)
        system = self.engine.system
        return {"algorithm": view_dict(view),
                "transactions": system.transactions(algo_id),
                "orders": system.orders_for(algo_id)}

    # --- changes -------------------------------------------------------------------------
    def do_add(self, req: dict[str, Any]) -> dict[str, Any]:
        plugin, ticker = req.get("plugin"), req.get("ticker")
        if not isinstance(plugin, str) or not plugin:
            raise RequestError("a plugin name is needed")
        if not isinstance(ticker, str) or not ticker:
            raise RequestError("a ticker is needed")
        capital: Any = req.get("capital")
        if isinstance(capital, str):
            try:
                capital = float(capital)
            except ValueError:
                raise RequestError(f"capital {capital!r} is not a number") from None
        params = req.get("params") or {}
        if not isinstance(params, dict):
            raise RequestError("params must be an object")
        name = req.get("name") or ""
        if not isinstance(name, str):
            raise RequestError("name must be a string")
        if len(name.strip()) > MAX_NAME:
            raise RequestError(f"a name is at most {MAX_NAME} characters (it shows on a card)")
        if any(not ch.isprintable() for ch in name):
            raise RequestError("a name cannot hold control characters (line breaks, tabs)")
        algo_id = self.engine.create_algorithm(plugin, ticker, capital, params=params,
                                               name=name)
        view = self.engine.algorithm_view(algo_id)
        logger.warning("%s: created algorithm %d %r: %s on %s with %.2f", SOURCE, algo_id,
                       view.name, plugin, view.ticker, float(capital))
        return {"id": algo_id, "algorithm": view_dict(view)}

    def do_stop(self, req: dict[str, Any]) -> dict[str, Any]:
        algo_id = _algo_id(req)
        sell = bool(req.get("sell"))
        logger.warning("%s: stop algorithm %d%s", SOURCE, algo_id, " and sell" if sell else "")
        self.engine.stop_algorithm(algo_id, liquidate=sell)
        return {"algorithm": view_dict(self.engine.algorithm_view(algo_id))}

    def do_resume(self, req: dict[str, Any]) -> dict[str, Any]:
        algo_id = _algo_id(req)
        logger.warning("%s: resume algorithm %d", SOURCE, algo_id)
        self.engine.resume_algorithm(algo_id)
        return {"algorithm": view_dict(self.engine.algorithm_view(algo_id))}

    def do_delete(self, req: dict[str, Any]) -> dict[str, Any]:
        algo_id = _algo_id(req)
        self.engine.algorithm_view(algo_id)  # unknown id: refused before anything changes
        logger.warning("%s: delete algorithm %d", SOURCE, algo_id)
        self.engine.delete_algorithm(algo_id)
        return {"id": algo_id}

    def do_stop_all(self, req: dict[str, Any]) -> dict[str, Any]:
        sell = bool(req.get("sell"))
        logger.warning("%s: stop all%s", SOURCE, " and sell" if sell else "")
        self.engine.stop_all(liquidate=sell, reason=f"stop all {SOURCE}")
        return {"algorithms": [view_dict(v) for v in self.engine.algorithm_views()]}
