"""Checking a record against its pydantic contract, the same way for every vendor."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


def contract_violation(model: type[BaseModel], record: Any) -> str | None:
    """None when the record keeps its contract, else a reason naming fields but no values."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    try:
        model.model_validate(record)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in item["loc"]) or "(record)"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {message}")
        return "; ".join(problems)
    return None
