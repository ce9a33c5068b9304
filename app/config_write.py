"""Change one setting in the config file, keeping everything else (comments, order, mode).

Used by the Settings screen for ``[ui] rotation``. The new text is parsed before it replaces
the file, and must give back the value asked for; it is written to a temporary file in the
same folder, flushed to disk and renamed over the old one, so a crash leaves the old file or
the new one, never half of one. A file that holds API keys keeps its 0600 mode; a new file is
created 0600.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path


class ConfigWriteError(OSError):
    """The file cannot be changed as asked (the message says why; it is left as it was)."""


def _section_span(lines: list[str], section: str) -> tuple[int, int] | None:
    """(header line index, end index) of ``[section]``, or None."""
    head = re.compile(rf"^\s*\[\s*{re.escape(section)}\s*\]\s*(#.*)?$")
    any_head = re.compile(r"^\s*\[")
    start = next((i for i, ln in enumerate(lines) if head.match(ln)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if any_head.match(lines[i])),
               len(lines))
    return start, end


def with_value(text: str, section: str, key: str, literal: str) -> str:
    """``text`` with ``key = literal`` in ``[section]`` (replacing the key's line, keeping its
    comment; or added under the header; or a new section at the end)."""
    lines = text.splitlines(keepends=True)
    span = _section_span(lines, section)
    line = f"{key} = {literal}\n"
    if span is None:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n")
                                                             else "\n\n")
        return f"{text}{sep}[{section}]\n{line}"
    start, end = span
    key_re = re.compile(rf"^(\s*){re.escape(key)}\s*=\s*[^#\n]*?(\s*#.*)?$")
    for i in range(start + 1, end):
        m = key_re.match(lines[i].rstrip("\n"))
        if m:
            comment = m.group(2) or ""
            lines[i] = f"{m.group(1)}{key} = {literal}{comment}\n"
            return "".join(lines)
    lines.insert(start + 1, line)
    return "".join(lines)


def set_value(path: Path, section: str, key: str, value: int | float | str | bool) -> None:
    """Write ``[section] key = value`` into the TOML file ``path`` (created if missing)."""
    path = Path(path).expanduser()
    literal = (("true" if value else "false") if isinstance(value, bool)
               else repr(value) if isinstance(value, int | float) else f'"{value}"')
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o600
    except OSError as e:
        raise ConfigWriteError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        tomllib.loads(old)
    except tomllib.TOMLDecodeError as e:
        raise ConfigWriteError(f"{path} is not valid TOML ({e}); fix it first, it was left "
                               "as it was") from None
    new = with_value(old, section, key, literal)
    try:
        got = tomllib.loads(new).get(section, {}).get(key)
    except tomllib.TOMLDecodeError:
        got = None  # e.g. the section written as ``ui.x = ...`` or ``ui = {...}``
    if got != value:
        raise ConfigWriteError(f"cannot place [{section}] {key} in {path} (it sets it in "
                               f"another form); set {key} = {literal} there by hand")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".autotrader-", suffix=".toml", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the rename itself reaches the disk
        finally:
            os.close(dfd)
    except OSError as e:
        raise ConfigWriteError(f"cannot write {path}: {e.strerror or e}") from None
