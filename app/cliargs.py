"""Command-line options every ``autotrader`` subcommand shares, and the settings they give.

Base layer (imports app.config only), so the subcommands in app/ops and app/control use it
without importing the top-level app.cli.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.config import Settings, default_config_path, load_settings


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help=f"config file (default: {default_config_path()})")
    p.add_argument("--data-dir", help="folder for the DBs (default: the platform's data folder)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def settings_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Settings:
    overrides: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "log_level": getattr(args, "log_level", None),
        "mode": getattr(args, "mode", None),
        "demo.speed": getattr(args, "speed", None),
        "_explicit_config": bool(getattr(args, "config", None)),
    }
    if getattr(args, "kiosk", False):
        overrides["ui.kiosk"] = True
    overrides.update(extra or {})
    return load_settings(getattr(args, "config", None), overrides=overrides)
