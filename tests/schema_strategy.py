"""Hypothesis strategies from a CRD's OpenAPI v3 schema (the structural subset CRDs use).

hypothesis-jsonschema would be the library for this, but 0.23 breaks on the Hypothesis we pin
(`'many' object has no attribute 'more'`), so this covers what our CRD uses: objects with
required/optional properties, arrays with maxItems, enums, strings with patterns and lengths,
integers and numbers with bounds, booleans. CEL rules are not modelled: the API server is the
judge of those, and tests keep only what it accepts.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        if not props:
            # Free-form (preserve-unknown-fields) or maps: a few string pairs.
            return st.dictionaries(
                st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.text(max_size=8), max_size=2
            )
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {"type": "string"})),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
            unique=bool(schema.get("x-kubernetes-list-type") == "set"),
        )
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 64)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: lo <= len(s) <= hi
            )
        return st.text(min_size=lo, max_size=min(hi, 64))
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31 - 1))
    if kind == "number":
        return st.floats(
            schema.get("minimum", -1e9),
            schema.get("maximum", 1e9),
            exclude_min=bool(schema.get("exclusiveMinimum")),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    return st.none()
