"""A spec's validation errors worded like the API server's: field path, problem, value."""

from __future__ import annotations

from pydantic import ValidationError


def spec_errors(e: ValidationError) -> list[str]:
    return [
        f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
        for err in e.errors()
    ]
