"""The QuickBooks simulator's write side: deposits created over the API, requestid replay, ledger.

Written deposits live here for the life of the process, apart from the derived books
(``simulators.quickbooks.data``), which are re-derived whenever the world changes. Their Ids
start at ``WRITTEN_FIRST_ID`` so they never collide with derived ids, which are numbered in
creation order and grow as the world's clock moves.

Validation follows the reference (quickbooks-and-reconciliation.md sections 6 and 11); a
refusal is a ``WriteFault`` the app renders as a Fault body (HTTP 400, or a batch item's
``Fault``). What the sources leave open is a setting of ``QuickBooksSimSettings``: whether a
repeated ``requestid`` is replayed, negative line amounts, the closed-period date, duplicate
DocNumber checks.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

WRITTEN_FIRST_ID = 1_000_000
BANK_TYPES = frozenset({"Bank", "Other Current Asset"})
DOC_NUMBER_MAX = 21
REQUESTID_MAX = 50  # a batch's requestid: 36, each bId: 10 (section 3)
BATCH_REQUESTID_MAX = 36
BID_MAX = 10
UNDEPOSITED_SUBTYPE = "UndepositedFunds"
_BUSINESS = "A business validation error has occurred while processing your request"
# Header fields a full update keeps only if the body sends them again (section 4).
_WRITABLE = (
    "TxnDate",
    "DocNumber",
    "PrivateNote",
    "DepositToAccountRef",
    "DepartmentRef",
    "CashBack",
    "CurrencyRef",
    "Line",
)


class WriteFault(Exception):
    """A write QuickBooks refuses: one ``Fault.Error`` entry."""

    def __init__(self, code: str, message: str, detail: str = "", element: str = ""):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element

    def error(self) -> dict[str, str]:
        return {
            "Message": self.message,
            "Detail": self.detail,
            "code": self.code,
            "element": self.element,
        }


def business(detail: str, element: str = "") -> WriteFault:
    return WriteFault("6000", _BUSINESS, f"Business Validation Error: {detail}", element)


@dataclass(frozen=True)
class Chart:
    """The company's name lists by Id, inactive entries included."""

    accounts: dict[str, dict]
    classes: dict[str, dict]
    departments: dict[str, dict]

    @classmethod
    def of(cls, objects: Callable[[str], list[dict]]) -> Chart:
        return cls(*({o["Id"]: o for o in objects(e)} for e in ("Account", "Class", "Department")))


@dataclass
class StoredResponse:
    status: int
    body: bytes
    media_type: str


@dataclass(frozen=True)
class WriteRules:
    """The unconfirmed behaviours, read from the simulator settings at each write."""

    allow_negative_lines: bool = True
    book_close_date: date | None = None
    duplicate_doc_number_fault: bool = False


class WriteStore:
    """Deposits written over the API, and every requestid seen (one simulator = one realm)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.deposits: dict[str, dict] = {}  # Id -> the object as the API serves it
        self.created_by: dict[str, tuple[str | None, str | None]] = {}  # Id -> (requestid, bId)
        self.responses: dict[tuple[str, str], StoredResponse] = {}  # (realm, requestid)
        self.requestids_seen: Counter[str] = Counter()
        self.batches = 0
        self.batch_items = 0
        self._next_id = WRITTEN_FIRST_ID

    # -- requestid ------------------------------------------------------------------------------

    def replayed(self, realm: str, requestid: str | None, replay: bool) -> StoredResponse | None:
        """The original response to a repeated requestid (counting every sighting)."""
        if not requestid:
            return None
        self.requestids_seen[requestid] += 1
        return self.responses.get((realm, requestid)) if replay else None

    def remember(self, realm: str, requestid: str | None, response: StoredResponse) -> None:
        if requestid and (realm, requestid) not in self.responses:
            self.responses[(realm, requestid)] = response

    # -- deposits -------------------------------------------------------------------------------

    def all_deposits(self) -> list[dict]:
        with self.lock:
            return list(self.deposits.values())

    def create(
        self,
        body: Any,
        chart: Chart,
        rules: WriteRules,
        *,
        now: str,
        today: date,
        requestid: str | None,
        bid: str | None = None,
        existing_doc_numbers: Iterable[str] = (),
    ) -> dict:
        with self.lock:
            fields = _header_fields(body)
            if "Id" in fields:
                raise WriteFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    "Id is read-only on a create",
                    "Id",
                )
            if rules.duplicate_doc_number_fault and fields.get("DocNumber"):
                taken = set(existing_doc_numbers) | {
                    d.get("DocNumber") for d in self.deposits.values()
                }
                if fields["DocNumber"] in taken:
                    raise WriteFault(
                        "6140",
                        "Duplicate Document Number Error",
                        "Duplicate Document Number Error : You must specify a different number. "
                        f"This number has already been used. DocNumber={fields['DocNumber']}",
                        "DocNumber",
                    )
            deposit = _render(fields, chart, rules, today)
            deposit_id = str(self._next_id)
            self._next_id += 1
            deposit = {
                "Id": deposit_id,
                "SyncToken": "0",
                "domain": "QBO",
                "sparse": False,
                "MetaData": {"CreateTime": now, "LastUpdatedTime": now},
                **deposit,
            }
            self.deposits[deposit_id] = deposit
            self.created_by[deposit_id] = (requestid, bid)
            return deposit

    def update(self, body: Any, chart: Chart, rules: WriteRules, *, now: str, today: date) -> dict:
        """A full update (omitted writable fields are cleared) or a sparse one (kept; a Line
        array sent replaces every line), both only with the current SyncToken."""
        with self.lock:
            fields = _header_fields(body)
            deposit_id = str(fields.get("Id"))
            old = self.deposits.get(deposit_id)
            if old is None:
                raise WriteFault(
                    "610",
                    "Object Not Found",
                    f"Object Not Found : Something you're trying to use has been made inactive "
                    f"or deleted. Deposit {deposit_id[:20]} (the simulator edits written "
                    "deposits only)",
                    "Id",
                )
            if str(fields.get("SyncToken")) != old["SyncToken"]:
                raise WriteFault(
                    "5010",
                    "Stale Object Error",
                    "Stale Object Error : You and another user were working on this at the same "
                    "time. The other user finished before you did, so your work was not saved.",
                    "SyncToken",
                )
            if old.get("TxnDate") and _closed(rules, date.fromisoformat(old["TxnDate"])):
                raise _period_closed()
            if fields.get("sparse") is True:
                merged = {k: old[k] for k in _WRITABLE if k in old and k not in fields}
                merged |= {k: v for k, v in fields.items() if k in _WRITABLE}
                if "Line" not in fields:  # keep the stored lines, refs re-checked as sent
                    merged["Line"] = [_as_request_line(line) for line in old["Line"]]
            else:
                merged = {k: v for k, v in fields.items() if k in _WRITABLE}
            rendered = _render(merged, chart, rules, today)
            new = {
                "Id": deposit_id,
                "SyncToken": str(int(old["SyncToken"]) + 1),
                "domain": "QBO",
                "sparse": False,
                "MetaData": {"CreateTime": old["MetaData"]["CreateTime"], "LastUpdatedTime": now},
                **rendered,
            }
            self.deposits[deposit_id] = new
            return new

    def summary(self) -> dict:
        """What /_sim/written answers."""
        with self.lock:
            return {
                "deposits": self.written(),
                "requestids": dict(self.requestids_seen),
                "batches": self.batches,
                "batch_items": self.batch_items,
            }

    def written(self) -> list[dict]:
        """What /_sim/written lists: each created deposit and the requestid that created it."""
        with self.lock:
            out = []
            for deposit_id, deposit in self.deposits.items():
                requestid, bid = self.created_by[deposit_id]
                out.append(
                    {
                        "Id": deposit_id,
                        "SyncToken": deposit["SyncToken"],
                        "TxnDate": deposit.get("TxnDate"),
                        "DocNumber": deposit.get("DocNumber"),
                        "TotalAmt": deposit["TotalAmt"],
                        "PrivateNote": deposit.get("PrivateNote"),
                        "requestid": requestid,
                        "bId": bid,
                        "requestid_seen": self.requestids_seen.get(requestid, 0)
                        if requestid
                        else 0,
                    }
                )
            return out


# --- validation and rendering --------------------------------------------------------------


def _header_fields(body: Any) -> dict:
    if not isinstance(body, dict):
        raise WriteFault(
            "2010", "Request has invalid or unsupported property", "expected a Deposit object"
        )
    return body


def _closed(rules: WriteRules, day: date) -> bool:
    return rules.book_close_date is not None and day <= rules.book_close_date


def _period_closed() -> WriteFault:
    return WriteFault(
        "6210",
        "Account Period Closed, Cannot Update Through Services API",
        "The account period has closed and the books cannot be updated through the QBO "
        "Services API. Please use the QBO website to make these changes.",
        "TxnDate",
    )


def _amount(value: Any, element: str) -> Decimal:
    if isinstance(value, bool):
        value = None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite():
        raise WriteFault(
            "2010",
            "Request has invalid or unsupported property",
            "Amount must be a number",
            element,
        )
    return amount.quantize(Decimal("0.01"))


def _ref(
    value: Any, table: dict[str, dict], label: str, element: str, *, required: bool = False
) -> dict | None:
    """A reference checked against a name list: unknown id 2500, inactive entry 610."""
    ref_id = value.get("value") if isinstance(value, dict) else None
    if ref_id in (None, ""):
        if required:
            raise WriteFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                f"Required parameter {element} is missing in the request",
                element,
            )
        return None
    entry = table.get(str(ref_id))
    if entry is None:
        raise WriteFault(
            "2500",
            "Invalid Reference Id",
            f"Invalid Reference Id : {label} element id {str(ref_id)[:20]} not found",
            element,
        )
    if not entry.get("Active", True):
        raise WriteFault(
            "610",
            "Object Not Found",
            "Object Not Found : Something you're trying to use has been made inactive. Check the "
            "fields with accounts, customers, items, vendors or employees.",
            element,
        )
    return {"value": entry["Id"], "name": entry.get("FullyQualifiedName") or entry["Name"]}


def _render(fields: dict, chart: Chart, rules: WriteRules, today: date) -> dict:
    """The stored deposit (server-computed parts included) from a request's fields."""
    doc_number = fields.get("DocNumber")
    if doc_number is not None and len(str(doc_number)) > DOC_NUMBER_MAX:
        raise WriteFault(
            "2050",
            "String length is either shorter or longer than supported by specification",
            f"String length specified does not match the supported length. Min:0 "
            f"Max:{DOC_NUMBER_MAX} supplied length:{len(str(doc_number))}",
            "DocNumber",
        )
    try:
        txn_date = date.fromisoformat(str(fields["TxnDate"])) if fields.get("TxnDate") else today
    except ValueError:
        raise WriteFault(
            "2010", "Request has invalid or unsupported property", "TxnDate: yyyy-MM-dd", "TxnDate"
        ) from None
    if _closed(rules, txn_date):
        raise _period_closed()
    bank = fields.get("DepositToAccountRef")
    bank_ref = None
    if isinstance(bank, dict) and bank.get("value") not in (None, ""):
        bank_ref = _ref(bank, chart.accounts, "Accounts", "DepositToAccountRef")
    if bank_ref is None or chart.accounts[bank_ref["value"]]["AccountType"] not in BANK_TYPES:
        raise business("Select a bank account for this deposit.", "DepositToAccountRef")
    department = _ref(
        fields.get("DepartmentRef"), chart.departments, "Departments", "DepartmentRef"
    )
    lines, total = _lines(fields.get("Line"), chart, rules)
    cash_back = None
    if isinstance(fields.get("CashBack"), dict):
        raw = fields["CashBack"]
        cash_back = {
            "AccountRef": _ref(
                raw.get("AccountRef"),
                chart.accounts,
                "Accounts",
                "CashBack.AccountRef",
                required=True,
            ),
            "Amount": float(_amount(raw.get("Amount"), "CashBack.Amount")),
        }
        if raw.get("Memo"):
            cash_back["Memo"] = str(raw["Memo"])
        total -= Decimal(str(cash_back["Amount"]))  # TotalAmt = lines - CashBack [U]
    if not lines or total == 0:
        raise business("You must set a transaction amount.", "Line")
    out: dict[str, Any] = {
        "TxnDate": txn_date.isoformat(),
        "CurrencyRef": fields.get("CurrencyRef")
        or {"value": "USD", "name": "United States Dollar"},
        "DepositToAccountRef": bank_ref,
        "TotalAmt": float(total),
        "Line": lines,
    }
    for name in ("DocNumber", "PrivateNote"):
        if fields.get(name) is not None:
            out[name] = str(fields[name])
    if department:
        out["DepartmentRef"] = department
    if cash_back:
        out["CashBack"] = cash_back
    return out


def _lines(raw: Any, chart: Chart, rules: WriteRules) -> tuple[list[dict], Decimal]:
    if raw is None:
        return [], Decimal(0)
    if not isinstance(raw, list):
        raise WriteFault(
            "2010", "Request has invalid or unsupported property", "Line must be a list", "Line"
        )
    lines, total = [], Decimal(0)
    for n, line in enumerate(raw, start=1):
        if not isinstance(line, dict):
            raise WriteFault(
                "2010", "Request has invalid or unsupported property", "a line must be an object"
            )
        amount = _amount(line.get("Amount"), "Line.Amount")
        if amount < 0 and not rules.allow_negative_lines:
            raise business("Deposit line amounts cannot be negative.", "Line.Amount")
        if line.get("LinkedTxn") and not line.get("DetailType"):
            # A linked line takes a Payment out of Undeposited Funds; this company has no
            # Payments, so every TxnId is unknown.
            raise WriteFault(
                "2500",
                "Invalid Reference Id",
                "Invalid Reference Id : Txn element id not found",
                "Line.LinkedTxn.TxnId",
            )
        detail = line.get("DepositLineDetail")
        detail = detail if isinstance(detail, dict) else {}
        account = _ref(
            detail.get("AccountRef"),
            chart.accounts,
            "Accounts",
            "Line.DepositLineDetail.AccountRef",
            required=True,
        )
        rendered_detail: dict[str, Any] = {"AccountRef": account}
        klass = _ref(
            detail.get("ClassRef"), chart.classes, "Classes", "Line.DepositLineDetail.ClassRef"
        )
        if klass:
            rendered_detail["ClassRef"] = klass
        for name in ("Entity", "PaymentMethodRef", "CheckNum", "TxnType"):
            if detail.get(name) is not None:
                rendered_detail[name] = detail[name]
        rendered = {
            "Id": str(n),
            "LineNum": n,
            "Amount": float(amount),
            "DetailType": "DepositLineDetail",
            "DepositLineDetail": rendered_detail,
        }
        if line.get("Description") is not None:
            rendered["Description"] = str(line["Description"])
        lines.append(rendered)
        total += amount
    return lines, total


def _as_request_line(line: dict) -> dict:
    return {k: v for k, v in line.items() if k not in ("Id", "LineNum")}


# --- the ledger ----------------------------------------------------------------------------


def debits(deposits: Iterable[dict], undeposited: str | None = None) -> dict[str, Decimal]:
    """Debit-positive change per account id that deposits make, as dbt_quickbooks books them
    (section 12): each line debits DepositToAccount and credits the line's AccountRef
    (``undeposited``, Undeposited Funds, for a linked line); CashBack credits the bank and
    debits its own account."""
    change: Counter[str] = Counter()
    for deposit in deposits:
        bank = deposit["DepositToAccountRef"]["value"]
        for line in deposit.get("Line", []):
            amount = Decimal(str(line["Amount"]))
            account = ((line.get("DepositLineDetail") or {}).get("AccountRef") or {}).get("value")
            change[bank] += amount
            change[account or undeposited or "?"] -= amount
        if deposit.get("CashBack"):
            amount = Decimal(str(deposit["CashBack"]["Amount"]))
            change[bank] -= amount
            change[deposit["CashBack"]["AccountRef"]["value"]] += amount
    return dict(change)


def ledger(deposits: Iterable[dict], accounts: list[dict]) -> list[dict]:
    """Per account, the balance every deposit gives it (``debits``). ``balance`` is
    debit-positive; ``normal_balance`` is on the account's normal side (debit for Asset and
    Expense, credit for the rest), as dbt_quickbooks' adjusted_amount."""
    undeposited = next(
        (a["Id"] for a in accounts if a.get("AccountSubType") == UNDEPOSITED_SUBTYPE), None
    )
    change = debits(deposits, undeposited)
    out = []
    for account in accounts:
        balance = change.get(account["Id"], Decimal(0))
        debit_normal = account.get("Classification") in ("Asset", "Expense")
        out.append(
            {
                "Id": account["Id"],
                "Name": account["Name"],
                "AccountType": account["AccountType"],
                "Classification": account.get("Classification"),
                "balance": float(balance),
                "normal_balance": float(balance if debit_normal else -balance),
            }
        )
    return out
