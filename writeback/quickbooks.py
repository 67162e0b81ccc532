"""QuickBooks Online writeback: each processor payout booked as one Deposit, exactly once.

``QuickBooksDestination`` is the ``writeback.deliver.Destination`` of one QuickBooks company.
From a ``QboDeposit`` payload it builds pattern A of the reference (section 12): a Deposit into
the bank account whose direct lines carry the gross per income/clearing account (with its
Class), and the fee, refunds and disputes as negative lines; ``TotalAmt`` = net = the bank line.
The payload names accounts, classes and the department as the org config does; they are resolved
to Ids against the live chart (``select * from Account|Class|Department``, cached per instance).
A name that does not resolve fails the row before any request is sent.

Exactly once, whatever QuickBooks does with ``requestid`` (sources disagree, section 3):
- every create carries ``?requestid=`` = the outbox key (36 characters at most); a batch carries
  a requestid derived from its items' ids, each item a short ``bId``;
- the key is also in ``PrivateNote`` (the planner puts ``writes.marker`` there), and
  ``lookup`` finds a deposit by it: ``PrivateNote`` is not queryable (section 8), so it reads the
  deposits of the row's ``TxnDate`` and matches the key client-side;
- a row QuickBooks refused before gets a fresh requestid when it is retried, so a replayed
  refusal cannot answer the corrected retry (the refused attempt created nothing).

Answers (section 6): the body is checked for ``Fault`` whatever the HTTP status. Validation
faults (codes 500-9999 outside 3000-3999) fail the row with ``QuickBooks <code>: <Message>
<Detail>``; a throttle (3001, XML body even for JSON, status 429 or 403) was not executed and is
sent again after a wait; a 401 is refreshed once by the auth flow (``extract.quickbooks.auth``,
the read side's token chain: pass the read side's landing root so both use one token store);
5xx, 10000, timeouts and lost connections leave the outcome unknown, settled by ``lookup``.

Pacing: ``requests_per_minute`` (default 95% of QBO's 500 per realm) spaces every request, and
``batch_requests_per_minute`` (95% of the 40 batch requests per realm) spaces batches, so a
healthy run never provokes a 429. The read side paces itself separately: run them at different
times, or lower both, so together they stay under the realm's limit.

Logs carry ids and counts only.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
from pydantic import ValidationError

from chairside.config import QuickBooksConnection, QuickBooksWriteback
from extract.http import ApiError, RateLimiter
from extract.quickbooks.connector import open_client
from writeback.deliver import ClientDestination, Failed, Outcome, Rejected, Sent, Unknown
from writeback.outbox import Row
from writeback.writes import QboDeposit, marker

log = logging.getLogger("chairside.writeback.quickbooks")

BANK_TYPES = ("Bank", "Other Current Asset")
Kind = Literal["account", "bank_account", "class", "department"]
_ENTITY = {"account": "Account", "bank_account": "Account", "class": "Class",
           "department": "Department"}  # fmt: skip
PAGE = 1000  # MAXRESULTS' maximum
MAX_BATCH_ITEMS = 30  # disputed (10/30/50); 30 is what Intuit's current docs and pyqb use
# What a refusal's reason starts with; a retried row that carries it gets a fresh requestid.
REFUSED = "QuickBooks "


class QuickBooksWriteError(RuntimeError):
    """An answer that leaves the outcome unknown (5xx, severe fault, unreadable body)."""


class QuickBooksDestination(ClientDestination):
    def __init__(
        self,
        connection: QuickBooksConnection,
        *,
        landing_root: Path | str,
        batch_size: int = 1,
        requests_per_minute: float = 475.0,
        batch_requests_per_minute: float = 38.0,
        throttle_wait_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not 1 <= batch_size <= MAX_BATCH_ITEMS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_ITEMS}")
        super().__init__(connection.id, open_client(connection, landing_root, transport))
        self.connection = connection
        self.batch_size = batch_size
        self.throttle_wait_s = throttle_wait_s
        # Our pacing, not the connection's read rate: every request, reads included, counts.
        self.client.limiter = RateLimiter(requests_per_minute / 60)
        self._batches = RateLimiter(batch_requests_per_minute / 60)
        self._base = f"/v3/company/{connection.realm_id}"
        self._chart: dict[str, list[dict]] | None = None
        self.throttled = 0  # throttle answers that reached us after the client's own retries

    # -- the chart of accounts ----------------------------------------------------------------

    def chart(self) -> dict[str, list[dict]]:
        """Accounts, classes and departments, inactive ones included (read once)."""
        if self._chart is None:
            self._chart = {
                entity: self._select_all(entity, "where Active in (true, false)")
                for entity in ("Account", "Class", "Department")
            }
            log.info(
                "%s: chart read (%s)",
                self.target,
                ", ".join(f"{len(v)} {k}" for k, v in self._chart.items()),
            )
        return self._chart

    def validate_mapping(self, names_by_config_path: dict[str, tuple[Kind, str]]) -> list[str]:
        """Problems with the names a config maps to, one line each, e.g. ``writeback.quickbooks
        .fee_account: no account named 'Merchant Fees' in the company (closest: 'Merchant
        fees')``. Kinds: account, bank_account (must be Bank or Other Current Asset), class,
        department. ``config_mapping`` lists the names of ``writeback.quickbooks``."""
        problems = []
        for path, (kind, name) in names_by_config_path.items():
            _, problem = self._resolve(kind, name)
            if problem:
                problems.append(f"{path}: {problem}")
        return problems

    def _resolve(self, kind: Kind, name: str) -> tuple[dict | None, str | None]:
        entries = self.chart()[_ENTITY[kind]]
        noun = "account" if kind == "bank_account" else kind
        same = [e for e in entries if name in (e.get("Name"), e.get("FullyQualifiedName"))]
        active = [e for e in same if e.get("Active", True)]
        if active:
            entry = active[0]
            if kind == "bank_account" and entry.get("AccountType") not in BANK_TYPES:
                return None, (
                    f"{name!r} is an {entry.get('AccountType')} account; a deposit goes to a "
                    f"Bank or Other Current Asset account"
                )
            return entry, None
        if same:
            return None, f"the {noun} {name!r} is inactive in the company"
        names = {e["Name"].lower(): e["Name"] for e in entries if e.get("Active", True)}
        if kind == "bank_account":
            names = {
                k: v
                for k, v in names.items()
                if any(e["Name"] == v and e.get("AccountType") in BANK_TYPES for e in entries)
            }
        closest = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.6)
        hint = f" (closest: {names[closest[0]]!r})" if closest else ""
        return None, f"no {noun} named {name!r} in the company{hint}"

    # -- Destination: lookup --------------------------------------------------------------------

    def lookup(self, rows: list[Row]) -> dict[str, str]:
        """Deposits already carrying a row's key in PrivateNote, read by the row's TxnDate."""
        by_day: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            try:
                by_day[date.fromisoformat(str(row.payload["txn_date"])).isoformat()].append(row)
            except (KeyError, ValueError):
                continue  # an unusable payload was never sent
        found: dict[str, str] = {}
        for day, group in by_day.items():
            deposits = self._select_all("Deposit", f"where TxnDate = '{day}'")
            for row in group:
                ids = sorted(
                    (d["Id"] for d in deposits if row.key in (d.get("PrivateNote") or "")),
                    key=lambda i: (len(i), i),
                )
                if ids:
                    found[row.key] = ids[0]
                if len(ids) > 1:
                    log.warning("%s: %d deposits carry key %s", self.target, len(ids), row.key)
        log.info("%s: lookup of %d rows found %d", self.target, len(rows), len(found))
        return found

    def _select_all(self, entity: str, where: str) -> list[dict]:
        rows: list[dict] = []
        start = 1
        while True:
            query = f"select * from {entity} {where} startposition {start} maxresults {PAGE}"
            body = self.client.get_json(
                f"{self._base}/query",
                {"query": query, "minorversion": self.connection.minor_version},
            )
            fault = _fault(body)
            if fault or not isinstance(body, dict) or "QueryResponse" not in body:
                detail = f"QuickBooks {fault[0]}" if fault else "no QueryResponse"
                raise ApiError(self.client.source, f"{self._base}/query", detail)
            page = body["QueryResponse"].get(entity, [])
            rows += page
            if len(page) < PAGE:
                return rows
            start += PAGE

    # -- Destination: send ----------------------------------------------------------------------

    def send(self, rows: list[Row]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        ready: list[tuple[Row, dict]] = []
        for row in rows:
            body, problem = self.deposit_body(row)
            if problem:
                outcomes[row.key] = Failed(problem)
            else:
                ready.append((row, body))
        if ready and self.batch_size > 1:
            outcomes |= self._send_batch(ready)
        else:
            for n, (row, body) in enumerate(ready):
                try:
                    outcomes[row.key] = self._create(row, body)
                except Exception as error:  # this one and the unsent rest: looked up next time
                    reason = f"{type(error).__name__}: {error}"
                    for later, _ in ready[n:]:
                        outcomes[later.key] = Unknown(reason)
                    break
        _log_outcomes(self.target, outcomes)
        return outcomes

    def deposit_body(self, row: Row) -> tuple[dict, None] | tuple[None, str]:
        """The QBO Deposit for a row, or why it cannot be built (names that do not resolve)."""
        try:
            payload = QboDeposit.model_validate(row.payload)
        except ValidationError as error:
            fields = sorted({".".join(map(str, e["loc"])) for e in error.errors()})
            return None, f"payload does not fit qbo_deposit: {', '.join(fields)}"
        problems: list[str] = []

        def ref(kind: Kind, name: str | None, path: str) -> dict | None:
            if name is None:
                return None
            entry, problem = self._resolve(kind, name)
            if problem:
                problems.append(f"{path}: {problem}")
                return None
            return {"value": entry["Id"], "name": entry["Name"]}

        bank = ref("bank_account", payload.bank_account, "bank_account")
        departments = {payload.department} | {line.department for line in payload.lines}
        departments.discard(None)
        if len(departments) > 1:
            problems.append(
                f"department: a QuickBooks deposit has one department, this payout names "
                f"{len(departments)} ({', '.join(sorted(map(repr, departments)))})"
            )
        department = ref("department", next(iter(departments), None), "department")
        lines = []
        for n, line in enumerate(payload.lines):
            detail: dict[str, Any] = {
                "AccountRef": ref("account", line.account, f"lines[{n}].account")
            }
            klass = ref("class", line.class_name, f"lines[{n}].class_name")
            if klass:
                detail["ClassRef"] = klass
            lines.append(
                {
                    "Amount": float(line.amount),
                    "Description": line.description,
                    "DetailType": "DepositLineDetail",
                    "DepositLineDetail": detail,
                }
            )
        total = sum((line.amount for line in payload.lines), Decimal(0))
        if total != payload.net:
            problems.append(f"lines: they sum to {total}, the payout's net is {payload.net}")
        if problems:
            return None, "; ".join(problems)
        note = payload.private_note
        if row.key not in note:  # the lookup finds a deposit by its key
            note = f"{note} {marker(row.key, payload.payout_id)}"
        body: dict[str, Any] = {
            "TxnDate": payload.txn_date.isoformat(),
            "DocNumber": payload.doc_number,
            "PrivateNote": note,
            "DepositToAccountRef": bank,
            "Line": lines,
        }
        if department:
            body["DepartmentRef"] = department
        return body, None

    def _create(self, row: Row, body: dict) -> Outcome:
        status, answer = self._post("/deposit", body, requestid(row))
        fault = _fault(answer)
        if fault:
            return _refusal(fault, status)
        deposit = answer.get("Deposit") if isinstance(answer, dict) else None
        if status == 200 and isinstance(deposit, dict) and deposit.get("Id"):
            return Sent(str(deposit["Id"]))
        raise QuickBooksWriteError(f"POST /deposit: HTTP {status} without a Deposit")

    def _send_batch(self, ready: list[tuple[Row, dict]]) -> dict[str, Outcome]:
        bids = {f"b{n}": row for n, (row, _) in enumerate(ready)}
        items = [
            {"bId": bid, "operation": "create", "Deposit": body}
            for bid, (_, body) in zip(bids, ready, strict=True)
        ]
        self._batches.wait()
        status, answer = self._post(
            "/batch", {"BatchItemRequest": items}, batch_requestid([r for r, _ in ready])
        )
        fault = _fault(answer)
        if fault:  # the whole batch refused (Rejected), or its outcome unknown (raises)
            raise Rejected(_refusal(fault, status).reason)
        answers = answer.get("BatchItemResponse") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(answers, list):
            raise QuickBooksWriteError(f"POST /batch: HTTP {status} without BatchItemResponse")
        outcomes: dict[str, Outcome] = {}
        for item in answers:
            row = bids.get(str(item.get("bId"))) if isinstance(item, dict) else None
            if row is None:
                continue
            deposit = item.get("Deposit")
            item_fault = _fault(item)
            if isinstance(deposit, dict) and deposit.get("Id"):
                outcomes[row.key] = Sent(str(deposit["Id"]))
            elif item_fault:
                try:
                    outcomes[row.key] = _refusal(item_fault, status)
                except QuickBooksWriteError as error:
                    outcomes[row.key] = Unknown(str(error))
        for row in bids.values():
            outcomes.setdefault(row.key, Unknown("the batch answer has no item for this write"))
        return outcomes

    def _post(self, path: str, body: dict, request_id: str) -> tuple[int, Any]:
        """POST a write; a throttle answer is waited out and sent again (it did not execute)."""
        params = {"requestid": request_id, "minorversion": self.connection.minor_version}
        waited, delay = 0.0, 1.0
        while True:
            response = self.client.write_json(
                "POST", f"{self._base}{path}", json=body, params=params
            )
            answer = _parse(response)
            fault = _fault(answer)
            if not (response.status_code == 429 or (fault and fault[0] == "3001")):
                if response.status_code >= 500 and not fault:
                    raise QuickBooksWriteError(f"POST {path}: HTTP {response.status_code}")
                return response.status_code, answer
            self.throttled += 1
            if waited >= self.throttle_wait_s:
                raise QuickBooksWriteError(f"POST {path}: still throttled after {waited:.0f}s")
            log.warning("%s POST %s: throttled (3001); again in %.0fs", self.target, path, delay)
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)


def open_destination(
    connection: QuickBooksConnection,
    books: QuickBooksWriteback,
    landing_root: Path | str,
    transport: httpx.BaseTransport | None = None,
) -> QuickBooksDestination:
    """The destination ``writeback.destinations`` builds from ``writeback.quickbooks``; the
    landing root is the read side's, so both sides share one token store."""
    return QuickBooksDestination(
        connection,
        landing_root=landing_root,
        batch_size=books.batch_size,
        requests_per_minute=float(books.requests_per_minute),
        transport=transport,
    )


def config_mapping(books: QuickBooksWriteback) -> dict[str, tuple[Kind, str]]:
    """Every name ``writeback.quickbooks`` maps to, by config path, for ``validate_mapping``."""
    path = "writeback.quickbooks"
    names: dict[str, tuple[Kind, str]] = {
        f"{path}.bank_account": ("bank_account", books.bank_account),
        f"{path}.fee_account": ("account", books.fee_account),
        f"{path}.refund_account": ("account", books.refund_account),
        f"{path}.default_income_account": ("account", books.default_income_account),
    }
    names |= {
        f"{path}.income_accounts[{k!r}]": ("account", v) for k, v in books.income_accounts.items()
    }
    names |= {f"{path}.classes[{k!r}]": ("class", v) for k, v in books.classes.items()}
    names |= {f"{path}.departments[{k!r}]": ("department", v) for k, v in books.departments.items()}
    return names


def requestid(row: Row) -> str:
    """The row's key; after QuickBooks refused the row, a fresh one per attempt (a replayed
    refusal must not answer the corrected retry, and a refused write created nothing)."""
    if row.attempts and (row.last_error or "").startswith(REFUSED):
        return f"{row.key}-{row.attempts}"  # at most 50 characters on a single create
    return row.key


def batch_requestid(rows: list[Row]) -> str:
    """36 characters, the same for the same items (so a resent batch is the same batch)."""
    digest = hashlib.sha256("\n".join(requestid(r) for r in rows).encode()).hexdigest()
    return f"csb-{digest[:32]}"


def _parse(response: httpx.Response) -> Any:
    """The JSON body, or an XML Fault (throttling answers XML even to JSON requests) as the
    same dict shape, or None."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    text = response.content.lstrip()
    if not text.startswith(b"<") or len(text) > 100_000:
        return None
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Fault":
            errors = []
            for error in element:
                parts = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in error}
                errors.append(
                    {
                        "code": error.get("code", ""),
                        "Message": parts.get("Message", ""),
                        "Detail": parts.get("Detail", ""),
                    }
                )
            return {"Fault": {"Error": errors, "type": element.get("type")}}
    return None


def _fault(body: Any) -> tuple[str, str, str] | None:
    """(code, Message, Detail) of the first error of a Fault body (either casing)."""
    if not isinstance(body, dict):
        return None
    fault = body.get("Fault") or body.get("fault")
    if not isinstance(fault, dict):
        return None
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}

    def text(name: str) -> str:
        return str(first.get(name) or first.get(name.lower()) or "").strip()

    return text("code") or "unknown", text("Message"), text("Detail")


def _refusal(fault: tuple[str, str, str], status: int) -> Failed:
    """A refusal fails the write; any other fault leaves its outcome unknown (raises)."""
    code, message, detail = fault
    number = int(code) if code.isdigit() else None
    refused = number is not None and 500 <= number < 10_000 and not 3000 <= number < 4000
    if refused:
        return Failed(f"{REFUSED}{code}: {message} {detail}".strip()[:500])
    raise QuickBooksWriteError(f"HTTP {status}, QuickBooks fault {code}")


def _log_outcomes(target: str, outcomes: dict[str, Outcome]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes.values():
        counts[type(outcome).__name__] += 1
    log.info("%s: %s", target, ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())))
