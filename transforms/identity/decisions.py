"""Review decisions: kept outside the warehouse, in an append-only JSON Lines file, so a
rebuild (which recreates every warehouse table) applies them again and never asks twice.

Actions:
- ``link``: the enquiry (subject) is the patient (object);
- ``no_match``: the enquiry is none of its candidates (a new patient);
- ``not_same``: the subject (an enquiry or a patient record) is not the object patient record;
- ``merge``: two patient records (subject, object) are one person.

A later decision on the same subject (and object) replaces an earlier one; nothing is deleted,
so the file is also the audit trail. Decisions name records by their warehouse keys (stable
hashes of the vendor's ids), never by a person's details.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field, ValidationError, model_validator

Action = Literal["link", "no_match", "not_same", "merge"]

SCHEMA = {
    "decision_id": pl.String,
    "decided_at": pl.Datetime("us", "UTC"),
    "reviewer": pl.String,
    "action": pl.String,
    "subject_key": pl.String,
    "object_key": pl.String,
    "note": pl.String,
}


class Decision(BaseModel):
    decision_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    decided_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    reviewer: str = Field(min_length=1)
    action: Action
    subject_key: str = Field(min_length=1)
    object_key: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _object(self) -> Decision:
        if (self.action == "no_match") != (self.object_key is None):
            needs = "no object_key" if self.action == "no_match" else "an object_key"
            raise ValueError(f"action {self.action!r} needs {needs}")
        if self.object_key == self.subject_key:
            raise ValueError("subject_key and object_key are the same record")
        return self


def record(path: Path | str, decision: Decision) -> Decision:
    """Append ``decision`` durably (locked against concurrent reviewers, fsynced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = decision.model_dump_json() + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return decision


def load(path: Path | str) -> pl.DataFrame:
    """Every decision in the file (an empty frame when there is none yet), validated: a line
    that is not a decision stops the build with its line number rather than being skipped."""
    path = Path(path)
    if not path.exists():
        return pl.DataFrame(schema=SCHEMA)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(Decision.model_validate_json(line).model_dump())
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in error.errors()
            )
            raise ValueError(f"{path}:{number}: not a valid decision: {problems}") from None
    return pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)


def current(decisions: pl.DataFrame) -> pl.DataFrame:
    """The decision in force per (subject, object): the latest. For an enquiry, ``link`` and
    ``no_match`` replace each other (only the latest of them counts)."""
    ordered = decisions.sort("decided_at", "decision_id")
    # A pair is unordered: (a, b) and (b, a) are one pair.
    pairwise = ordered.filter(pl.col("action").is_in(["not_same", "merge"])).with_columns(
        subject_key=pl.min_horizontal("subject_key", "object_key"),
        object_key=pl.max_horizontal("subject_key", "object_key"),
    )
    pairwise = pairwise.unique(["subject_key", "object_key"], keep="last", maintain_order=True)
    verdicts = ordered.filter(pl.col("action").is_in(["link", "no_match"])).unique(
        "subject_key", keep="last", maintain_order=True
    )
    return pl.concat([pairwise, verdicts])
