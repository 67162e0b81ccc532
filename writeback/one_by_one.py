"""What the PMS destinations share: one request per outbox row, chosen by the row's kind.

A subclass names its vendor, maps each kind it takes to a sender (``senders``), finds an earlier
write of a row (``_find``), says how the vendor explains a refusal (``_explanation``) and what a
refused key means (``_access_refused``). The rest is here: the
``writeback.deliver.Destination`` protocol, turning an answer into an outcome, and logging by
ids only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from extract.http import ApiClient, ApiError
from writeback.deliver import ClientDestination, Failed, Outcome, Sent, Unknown
from writeback.outbox import Row
from writeback.writes import parse_row

REASON_CHARS = 200  # a vendor's refusal text kept in the outbox, at most


class OneByOneDestination(ClientDestination):
    batch_size = 1
    vendor = ""  # as people name it: "Open Dental"
    log: logging.Logger

    def __init__(self, target: str, client: ApiClient):
        super().__init__(target, client)
        self.senders: dict[str, Callable[[Row, Any], Outcome]] = {}

    # -- for subclasses ---------------------------------------------------------------------

    def _find(self, row: Row) -> str | None:
        raise NotImplementedError

    def _explanation(self, response: httpx.Response) -> str:
        raise NotImplementedError

    def _access_refused(self, status: int, endpoint: str) -> str:
        raise NotImplementedError

    # -- Destination ------------------------------------------------------------------------

    def send(self, rows: list[Row]) -> dict[str, Outcome]:
        outcomes = {}
        for row in rows:
            outcome = self._send(row)
            self._log_outcome(row, outcome)
            outcomes[row.key] = outcome
        return outcomes

    def lookup(self, rows: list[Row]) -> dict[str, str]:
        found = {}
        for row in rows:
            remote_id = self._find(row)
            if remote_id is not None:
                self.log.info("%s %s: already written (%s)", self._where(row), row.key, remote_id)
                found[row.key] = remote_id
        return found

    # -- shared ------------------------------------------------------------------------------

    def _send(self, row: Row) -> Outcome:
        sender = self.senders.get(row.kind)
        if sender is None:
            return Failed(f"{self.vendor} does not take {row.kind} writes")
        payload = parse_row(row)
        if isinstance(payload, Failed):
            return payload
        try:
            return sender(row, payload)
        except ApiError as error:  # a read before the write (a token, definitions, a record)
            if error.status in (401, 403):
                return Failed(self._access_refused(error.status, error.endpoint))
            raise

    def _refusal(self, response: httpx.Response, endpoint: str) -> Outcome | None:
        """None for a success; Failed for a refusal that cannot succeed unchanged; Unknown for
        an answer that says nothing about whether the write happened."""
        status = response.status_code
        if status in (200, 201):
            return None
        if status in (401, 403):
            refused = self._access_refused(status, endpoint)
            return Failed(f"{refused} ({self._explanation(response)})")
        if status in (408, 429) or status >= 500:
            return Unknown(f"{self.vendor} answered HTTP {status} to {endpoint}")
        return Failed(f"{self.vendor} {status}: {self._explanation(response)}")

    def _where(self, row: Row) -> str:
        return f"{self.log.name.rpartition('.')[2]}[{self.target}] {row.kind}"

    def _log_outcome(self, row: Row, outcome: Outcome) -> None:
        where = f"{self._where(row)} {row.key}"
        if isinstance(outcome, Sent):
            self.log.info("%s: written (%s)", where, outcome.remote_id)
        elif isinstance(outcome, Failed):
            self.log.warning("%s: refused: %s", where, outcome.reason)
        else:
            self.log.warning("%s: outcome unknown: %s", where, outcome.error)


def capped(text: str) -> str:
    """A vendor's explanation on one line, at most REASON_CHARS long."""
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else f"{text[: REASON_CHARS - 3]}..."
