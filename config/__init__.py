"""Policy-as-data and settings shipped with deskgate, and the one loader that reads them.

Every file is validated when the server starts; an error names the file and the line.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from deskgate.server.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def packaged(name: str) -> Path:
    """Path of a default file shipped in this package (e.g. `policy.toml`)."""
    return Path(str(resources.files(__name__).joinpath(name)))


def read_toml(path: Path, text: str | None = None) -> tuple[dict[str, Any], str]:
    """Parse a TOML file, or `text` said to come from `path` (errors name it)."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(str(exc), file=str(path), line=int(match.group(1)) if match else None) from exc


def line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best line for a dotted location: the line of its last key under its table, if found."""
    keys = [str(k) for k in loc if isinstance(k, str)]
    if not keys:
        return None
    table_line = 0
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        stripped = raw.strip()
        header = stripped.strip("[]").strip()
        if stripped.startswith("[") and header and header in {".".join(keys[:n]) for n in range(1, len(keys) + 1)}:
            table_line = i
    for i in range(table_line, len(lines)):
        if re.match(rf"\s*\"?{re.escape(keys[-1])}\"?\s*=", lines[i]):
            return i + 1
    return table_line + 1 if table_line or lines[:1] else None


def load_model(path: Path, model: type[M], overrides: dict[str, Any] | None = None, text: str | None = None) -> M:
    """Parse a TOML file (or its `text`) into `model`; `overrides` are merged on top (table by table)."""
    data, text = read_toml(path, text)
    if overrides:
        data = merge(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: {first['msg']}", file=str(path), line=line_of(text, first["loc"])) from exc


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
