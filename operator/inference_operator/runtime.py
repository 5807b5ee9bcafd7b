"""The operator's settings, parsed from the environment once per process: by `__main__` before it
imports the handlers (which hands them over with `use`), or on first use under kopf.testing.
kopf's decorators need the periods at import. Pure rooms never read settings; handlers pass what
a pure function needs as arguments."""

from __future__ import annotations

from inference_operator.settings import Settings, load_settings

_settings: Settings | None = None


def use(settings: Settings) -> None:
    global _settings
    _settings = settings


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings
