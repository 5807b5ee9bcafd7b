"""The gateway's YAML files (tenants, fallbacks): parsed into a pydantic model, with an error
that names the file, the field, the value and what is allowed; names unique."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from inference_operator.api.errors import field_path

File = TypeVar("File", bound=BaseModel)


def parse_file(model: type[File], text: str, where: str) -> File:
    try:
        raw: Any = yaml.safe_load(text)
        return model.model_validate(raw)
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: not YAML: {e}") from None
    except ValidationError as e:
        problems = [
            f"{field_path(err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in e.errors()
        ]
        raise ValueError(f"{where}: " + "; ".join(problems)) from None


def unique_names(names: Sequence[str], field: str, where: str) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{where}: {field} must be unique (twice: {', '.join(twice)})")
