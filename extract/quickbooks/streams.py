"""What we read from QuickBooks Online, and how each entity is kept up to date.

All reads go through ``/query`` (QBO's SQL-like language) with 1-based ``STARTPOSITION`` /
``MAXRESULTS`` paging in ``Id`` order:

- ``snapshot``: the name lists (accounts, classes, departments) are small and read whole every
  run, inactive entries included (``Active IN (true, false)``; queries return only active ones
  otherwise). Whole reads also pick up ``CurrentBalance``, which changes without touching
  ``MetaData.LastUpdatedTime``.
- ``stamped``: deposits and journal entries: ``MetaData.LastUpdatedTime >= cursor - overlap``,
  where the cursor is the server's clock (the response ``time``) when the run started, so an
  edit (SyncToken + 1) made while we read is re-read next time, never skipped.

Why ``/query`` and not ``/cdc``: CDC looks back at most 30 days (a first sync, or a connector
that was down a month, cannot use it) and caps a response at 1000 objects with no way to page
on, whereas ``/query`` pages through any window. CDC's one extra, deletes (``status:
"Deleted"``), is not used yet: like the other connectors we do not detect deletions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from extract.quickbooks import contracts

Kind = Literal["snapshot", "stamped"]
STAMP = "MetaData.LastUpdatedTime"


@dataclass(frozen=True)
class Stream:
    entity: str
    qbo_entity: str  # the name in the query language and in QueryResponse
    kind: Kind
    contract: type[BaseModel]


STREAMS: dict[str, Stream] = {
    s.entity: s
    for s in (
        Stream("accounts", "Account", "snapshot", contracts.Account),
        Stream("classes", "Class", "snapshot", contracts.Class),
        Stream("departments", "Department", "snapshot", contracts.Department),
        Stream("deposits", "Deposit", "stamped", contracts.Deposit),
        Stream("journal_entries", "JournalEntry", "stamped", contracts.JournalEntry),
    )
}
ENTITIES: tuple[str, ...] = tuple(STREAMS)


def select(stream: Stream, since: str | None, start: int, size: int) -> str:
    """The query for one page (``since``: an ISO instant; None reads everything)."""
    where = ""
    if stream.kind == "snapshot":
        where = " where Active in (true, false)"
    elif since is not None:
        where = f" where {STAMP} >= '{since}'"
    return (
        f"select * from {stream.qbo_entity}{where} orderby Id startposition {start} "
        f"maxresults {size}"
    )
