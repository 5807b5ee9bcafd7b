"""A spec's validation errors worded like the API server's: field path, problem, value."""

from __future__ import annotations

from pydantic import ValidationError


def field_path(loc: tuple[int | str, ...]) -> str:
    """('schedules', 0, 'cron') -> 'schedules[0].cron', as the API server writes paths."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def spec_errors(e: ValidationError) -> list[str]:
    return [
        f"spec.{field_path(err['loc'])}: {err['msg']} (got {err.get('input')!r})"
        for err in e.errors()
    ]
