"""The group's QuickBooks Online company, derived from the card processor's payouts.

The books follow the reference's pattern A (a Deposit per payout, gross and fee apart): each
paid payout becomes one Deposit into Checking, posted ``deposit_lag_hours`` after the money
arrives. Its lines: gross card payments per (payment type, location) to that payment type's
income account with the location's Class, refunds (negative) to Patient Refunds, chargebacks
(negative) and won-back chargebacks to Disputed Card Payments, and one negative line for all
processor fees to Merchant Fees. ``TotalAmt`` = Σ lines = the payout's net amount = the bank
line; the payout id is in ``PrivateNote`` (27 characters do not fit DocNumber's 21).

Journal entries: each month's merchant fees re-allocated to the locations' Classes and
Departments, and a lost chargeback written off to Chargeback Losses.

Like ``simulators.stripe.data`` this is a pure function of the world and its clock: ids are
numbered in creation order (an entity exists once its CreateTime has passed, so existing ids
never change), and the few edits (a bookkeeper marking a deposit reviewed) happen at fixed
times and bump ``SyncToken`` and ``MetaData.LastUpdatedTime``.

Bookkeeping slips are off by default (``QuickBooksDataSettings``): a payout never booked, booked
twice, dated days late, booked net as income, a fee or income line keyed wrong, and deposits
naming a payout the processor does not have. At most one slip per payout, chosen by a stable
hash of its id. ``truth_reconciliation_discrepancies`` lists every discrepancy of the processor
and the books (``simulators.quickbooks.discrepancies``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from simulators.quickbooks.discrepancies import discrepancy_frame
from simulators.stripe.data import (
    DAY,
    DEMO_ONLINE_PAYMENT_RATE,
    HOUR,
    PAYMENT_TYPES,
    BalanceTransaction,
    Payout,
    StripeData,
    StripeDataSettings,
    fee_cents,
    flatten,
    frame_of,
    midnight,
    stable_id,
    unit,
    utc_day,
)
from simulators.stripe.data import derive as derive_processor
from simulators.world import World

# (Id, Name, AccountType, AccountSubType, Classification, Active)
ACCOUNTS = (
    ("1", "Checking", "Bank", "Checking", "Asset", True),
    ("2", "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset", True),
    ("3", "Card Clearing", "Other Current Asset", "OtherCurrentAssets", "Asset", True),
    ("4", "Disputed Card Payments", "Other Current Asset", "OtherCurrentAssets", "Asset", True),
    ("5", "Patient Card Payments - Terminal", "Income", "ServiceFeeIncome", "Revenue", True),
    ("6", "Patient Card Payments - Portal", "Income", "ServiceFeeIncome", "Revenue", True),
    ("7", "Payment Plan Receipts", "Income", "ServiceFeeIncome", "Revenue", True),
    ("8", "Membership Plan Income", "Income", "ServiceFeeIncome", "Revenue", True),
    ("9", "Balance Collections", "Income", "ServiceFeeIncome", "Revenue", True),
    ("10", "Insurance Card Payments", "Income", "ServiceFeeIncome", "Revenue", True),
    ("11", "Patient Refunds", "Income", "DiscountsRefundsGiven", "Revenue", True),
    ("12", "Merchant Fees", "Expense", "BankCharges", "Expense", True),
    ("13", "Chargeback Losses", "Expense", "OtherMiscellaneousServiceCost", "Expense", True),
    ("14", "Old Processor Fees (deleted)", "Expense", "BankCharges", "Expense", False),
)
CHECKING, DISPUTED, REFUNDS, FEES, CHARGEBACKS = "1", "4", "11", "12", "13"
INCOME_ACCOUNT = dict(zip(PAYMENT_TYPES, ("5", "6", "7", "8", "9", "10"), strict=True))
TERMINAL = "card_terminal"
FIRST_TXN_ID = 100
USD = {"value": "USD", "name": "United States Dollar"}


@dataclass(frozen=True)
class QuickBooksDataSettings:
    company_timezone: str = "America/New_York"
    # The bookkeeper posts a payout's deposit this long after it arrives (00:00 UTC); below
    # 48 h, so a month's deposits exist before its fee allocation on the 3rd.
    deposit_lag_hours: int = 15
    reviewed_deposit_rate: float = 0.25  # deposits edited ("reviewed") two days after posting
    stripe: StripeDataSettings = field(default_factory=StripeDataSettings)
    # Bookkeeping slips (default none), each a share of payouts; one slip at most per payout.
    missing_deposit_rate: float = 0.0  # never booked
    duplicate_deposit_rate: float = 0.0  # booked again 2-7 days later (a bank-feed match)
    late_dated_deposit_rate: float = 0.0  # dated 4-9 days after the money arrived
    net_as_income_rate: float = 0.0  # net booked as income, no fee line: gross and fee off
    mistyped_fee_rate: float = 0.0  # the fee line keyed 1.00-20.00 too high: fee and net off
    mistyped_income_rate: float = 0.0  # an income line keyed 1.00-20.00 too high: gross, net off
    # Probability per business day of a deposit naming a payout the processor does not have.
    orphan_deposit_rate: float = 0.0
    # The bookkeeper books payouts arriving before this day only; later ones are left for
    # Chairside's writeback (its cut-over day, writeback.quickbooks.payouts_from). None: all.
    booked_by_hand_before: date | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.deposit_lag_hours < 48:
            raise ValueError("deposit_lag_hours must be in [0, 48)")


# The demo world's processor and books (``python -m simulators``): every reconciliation code of
# docs/reconciliation.md occurs at least once, a few times each in a year of history.
DEMO_PROCESSOR = StripeDataSettings(
    failed_payout_rate=0.02,
    missing_charge_rate=0.01,
    orphan_charge_rate=0.02,
    pms_amount_mismatch_rate=0.01,
    fee_anomaly_rate=0.02,
    online_payment_rate=DEMO_ONLINE_PAYMENT_RATE,  # paid online: Chairside posts them
)
DEMO_BOOKS = QuickBooksDataSettings(
    stripe=DEMO_PROCESSOR,
    missing_deposit_rate=0.02,
    duplicate_deposit_rate=0.02,
    late_dated_deposit_rate=0.02,
    net_as_income_rate=0.02,
    mistyped_fee_rate=0.02,
    mistyped_income_rate=0.02,
    orphan_deposit_rate=0.01,
)


@dataclass
class Line:
    amount: int  # cents, signed
    description: str
    account: str
    location: str | None = None
    posting: str | None = None  # journal lines: Debit | Credit


@dataclass
class Txn:
    kind: str  # Deposit | JournalEntry
    key: str  # what it books: a payout id, a month, a dispute id
    created: int
    txn_date: date
    note: str
    lines: list[Line]
    doc_number: str | None = None
    edited: int | None = None  # when the bookkeeper edited it, if that has happened
    id: str = ""
    slip: str | None = None  # the bookkeeping slip it carries (a Deposit), if any

    @property
    def total(self) -> int:
        if self.kind == "Deposit":
            return sum(line.amount for line in self.lines)
        return sum(line.amount for line in self.lines if line.posting == "Debit")


@dataclass
class QuickBooksData:
    now: int
    settings: QuickBooksDataSettings
    processor: StripeData
    locations: list[tuple[str, str]]  # (office key, name): Class/Department Id = position + 1
    company_created: int  # when the name lists (accounts, classes, departments) were set up
    deposits: list[Txn]
    journal_entries: list[Txn]
    unbooked: list[str] = field(default_factory=list)  # payouts the books skipped (a slip)

    # -- formatting -------------------------------------------------------------------------

    def stamp(self, epoch: int) -> str:
        zone = ZoneInfo(self.settings.company_timezone)
        return datetime.fromtimestamp(epoch, zone).isoformat()

    def _meta(self, created: int, updated: int | None = None) -> dict:
        return {
            "CreateTime": self.stamp(created),
            "LastUpdatedTime": self.stamp(updated or created),
        }

    def _location_ref(self, office: str) -> dict:
        index = next(i for i, (key, _) in enumerate(self.locations) if key == office)
        return {"value": str(index + 1), "name": self.locations[index][1]}

    @staticmethod
    def _account_ref(account: str) -> dict:
        return {"value": account, "name": _ACCOUNT_NAMES[account]}

    # -- API objects ------------------------------------------------------------------------

    def account_objects(self) -> list[dict]:
        balances = self._balances()
        return [
            {
                "Id": acct,
                "SyncToken": "0",
                "domain": "QBO",
                "sparse": False,
                "MetaData": self._meta(self.company_created),
                "Name": name,
                "SubAccount": False,
                "FullyQualifiedName": name,
                "Active": active,
                "Classification": classification,
                "AccountType": kind,
                "AccountSubType": subtype,
                "CurrentBalance": _dollars(balances.get(acct, 0)),
                "CurrentBalanceWithSubAccounts": _dollars(balances.get(acct, 0)),
                "CurrencyRef": USD,
            }
            for acct, name, kind, subtype, classification, active in ACCOUNTS
        ]

    def location_objects(self, entity: str) -> list[dict]:
        """Classes or Departments: one per location (office) of the group."""
        sub = "SubClass" if entity == "Class" else "SubDepartment"
        return [
            {
                "Id": str(i + 1),
                "SyncToken": "0",
                "domain": "QBO",
                "sparse": False,
                "MetaData": self._meta(self.company_created),
                "Name": name,
                sub: False,
                "FullyQualifiedName": name,
                "Active": True,
            }
            for i, (_, name) in enumerate(self.locations)
        ]

    def deposit_object(self, t: Txn) -> dict:
        lines = []
        for n, line in enumerate(t.lines, start=1):
            detail = {"AccountRef": self._account_ref(line.account)}
            if line.location:
                detail["ClassRef"] = self._location_ref(line.location)
            lines.append(
                {
                    "Id": str(n),
                    "LineNum": n,
                    "Description": line.description,
                    "Amount": _dollars(line.amount),
                    "DetailType": "DepositLineDetail",
                    "DepositLineDetail": detail,
                }
            )
        return {
            **self._header(t),
            "DepositToAccountRef": self._account_ref(CHECKING),
            "TotalAmt": _dollars(t.total),
            "Line": lines,
        }

    def journal_entry_object(self, t: Txn) -> dict:
        lines = []
        for n, line in enumerate(t.lines):
            detail = {"PostingType": line.posting, "AccountRef": self._account_ref(line.account)}
            if line.location:
                detail["ClassRef"] = self._location_ref(line.location)
                detail["DepartmentRef"] = self._location_ref(line.location)
            lines.append(
                {
                    "Id": str(n),
                    "Description": line.description,
                    "Amount": _dollars(line.amount),
                    "DetailType": "JournalEntryLineDetail",
                    "JournalEntryLineDetail": detail,
                }
            )
        return {
            **self._header(t),
            "Adjustment": False,
            "TotalAmt": _dollars(t.total),
            "Line": lines,
        }

    def _header(self, t: Txn) -> dict:
        note = f"{t.note} - reviewed" if t.edited else t.note
        header = {
            "Id": t.id,
            "SyncToken": "1" if t.edited else "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": self._meta(t.created, t.edited),
            "TxnDate": t.txn_date.isoformat(),
            "CurrencyRef": USD,
            "PrivateNote": note,
        }
        return header | ({"DocNumber": t.doc_number} if t.doc_number else {})

    def _balances(self) -> dict[str, int]:
        """CurrentBalance of balance-sheet accounts (debit-positive); P&L accounts show 0."""
        assets = {a[0] for a in ACCOUNTS if a[4] == "Asset"}
        out: dict[str, int] = defaultdict(int)
        for t in self.deposits:
            out[CHECKING] += t.total
            for line in t.lines:
                out[line.account] -= line.amount
        for t in self.journal_entries:
            for line in t.lines:
                out[line.account] += line.amount if line.posting == "Debit" else -line.amount
        return {k: v for k, v in out.items() if k in assets}

    # -- truth ------------------------------------------------------------------------------

    def frames(self) -> dict[str, pl.DataFrame]:
        deposits = [self.deposit_object(t) for t in self.deposits]
        journals = [self.journal_entry_object(t) for t in self.journal_entries]
        offices = [key for key, _ in self.locations]
        return {
            "quickbooks_accounts": frame_of([flatten(a) for a in self.account_objects()]),
            "quickbooks_classes": frame_of(
                [
                    flatten(c) | {"office": o}
                    for c, o in zip(self.location_objects("Class"), offices, strict=True)
                ]
            ),
            "quickbooks_departments": frame_of(
                [
                    flatten(d) | {"office": o}
                    for d, o in zip(self.location_objects("Department"), offices, strict=True)
                ]
            ),
            "quickbooks_deposits": frame_of(
                [
                    flatten(d, drop=("Line",)) | {"payout_id": t.key}
                    for d, t in zip(deposits, self.deposits, strict=True)
                ]
            ),
            "quickbooks_deposit_lines": _lines(deposits),
            "quickbooks_journal_entries": frame_of([flatten(j, drop=("Line",)) for j in journals]),
            "quickbooks_journal_entry_lines": _lines(journals),
            "truth_reconciliation_discrepancies": discrepancy_frame(self),
        }


_ACCOUNT_NAMES = {a[0]: a[1] for a in ACCOUNTS}


def _dollars(cents: int) -> float:
    return round(cents / 100, 2)


def _lines(objects: list[dict]) -> pl.DataFrame:
    return frame_of([{"TxnId": o["Id"], **flatten(line)} for o in objects for line in o["Line"]])


# --- derivation ----------------------------------------------------------------------------


def derive(world: World, settings: QuickBooksDataSettings | None = None) -> QuickBooksData:
    """The company's books as of the world's clock."""
    s = settings or QuickBooksDataSettings()
    processor = derive_processor(world, s.stripe)
    now, seed = processor.now, world.spec.seed
    deposits, unbooked = [], []
    for p in processor.payouts:
        if p.fails or p.arrival_date > now:
            continue
        cut_over = s.booked_by_hand_before
        if cut_over is not None and datetime.fromtimestamp(p.arrival_date, UTC).date() >= cut_over:
            continue
        slip = _slip(seed, p.id, s)
        if slip == "missing_deposit":
            unbooked.append(p.id)
            continue
        deposits += _slipped(_deposit(processor, p, s), slip, seed)
    deposits += _orphan_deposits(world, s, now)
    journals = _fee_allocations(deposits, processor) + _write_offs(processor)
    existing = sorted(
        (t for t in deposits + journals if t.created <= now),
        key=lambda t: (t.created, t.kind, t.key),
    )
    for n, t in enumerate(existing):
        t.id = str(FIRST_TXN_ID + n)
        if t.edited is not None and t.edited > now:
            t.edited = None
    return QuickBooksData(
        now=now,
        settings=s,
        processor=processor,
        locations=[(o.key, o.name) for o in world.spec.offices],
        company_created=_company_created(world),
        deposits=[t for t in existing if t.kind == "Deposit"],
        journal_entries=[t for t in existing if t.kind == "JournalEntry"],
        unbooked=unbooked,
    )


def _slip(seed: int, payout_id: str, s: QuickBooksDataSettings) -> str | None:
    """The one bookkeeping slip a payout gets, if any: consecutive slices of one stable draw."""
    draw, edge = unit(seed, "books-slip", payout_id), 0.0
    for slip, rate in (
        ("missing_deposit", s.missing_deposit_rate),
        ("duplicate_deposit", s.duplicate_deposit_rate),
        ("late_dated", s.late_dated_deposit_rate),
        ("net_as_income", s.net_as_income_rate),
        ("mistyped_fee", s.mistyped_fee_rate),
        ("mistyped_income", s.mistyped_income_rate),
    ):
        edge += rate
        if draw < edge:
            return slip
    return None


def _company_created(world: World) -> int:
    start = world.spec.now_utc - timedelta(days=world.spec.history_days + 30)
    return midnight(start.date()) + 14 * HOUR


def expanded(p: Payout, processor: StripeData) -> list[BalanceTransaction]:
    """What a payout paid out; money returned by a failed payout counts as that payout's items."""
    out = []
    for t in p.items:
        failed = processor.payouts_by_id.get(t.source) if t.type == "payout_failure" else None
        out += expanded(failed, processor) if failed else [t]
    return out


def _deposit(processor: StripeData, p: Payout, s: QuickBooksDataSettings) -> Txn:
    gross: dict[tuple[str, str], int] = defaultdict(int)
    refunds: dict[str, int] = defaultdict(int)
    disputes: dict[tuple[str, str], int] = defaultdict(int)
    fees = 0
    for t in expanded(p, processor):
        fees += t.fee
        c = t.charge
        if t.reporting_category == "charge":
            gross[(c.location, c.payment_type)] += t.amount
        elif t.reporting_category == "refund":
            refunds[c.location] += t.amount
        else:  # dispute, dispute_reversal
            disputes[(t.reporting_category, c.location)] += t.amount
    lines = [
        Line(cents, f"Card payments: {kind.replace('_', ' ')}", INCOME_ACCOUNT[kind], location)
        for (location, kind), cents in sorted(gross.items())
    ]
    lines += [Line(c, "Refunds", REFUNDS, loc) for loc, c in sorted(refunds.items())]
    lines += [
        Line(c, "Chargebacks" if cat == "dispute" else "Chargebacks won", DISPUTED, loc)
        for (cat, loc), c in sorted(disputes.items())
    ]
    if fees:
        lines.append(Line(-fees, "Processor fees", FEES))
    created = p.arrival_date + s.deposit_lag_hours * HOUR
    reviewed = unit("reviewed", p.id) < s.reviewed_deposit_rate
    return Txn(
        kind="Deposit",
        key=p.id,
        created=created,
        txn_date=utc_day(p.arrival_date),
        note=f"Stripe payout {p.id}",
        lines=lines,
        edited=created + 2 * DAY + HOUR if reviewed else None,
    )


def _slipped(deposit: Txn, slip: str | None, seed: int) -> list[Txn]:
    """The deposit as the bookkeeper posted it: once, or with its slip (a payout's only one)."""
    fee_lines = [line for line in deposit.lines if line.account == FEES]
    income = [line for line in deposit.lines if line.account in INCOME_ACCOUNT.values()]
    fees = -sum(line.amount for line in fee_lines)
    delta = 100 + int(unit(seed, "slip-amount", deposit.key) * 1_900)
    days = int(unit(seed, "slip-days", deposit.key) * 6)
    if slip == "duplicate_deposit":
        again = Txn(
            kind="Deposit",
            key=deposit.key,
            created=deposit.created + (2 + days) * DAY,
            txn_date=deposit.txn_date,
            note=deposit.note,
            lines=[Line(x.amount, x.description, x.account, x.location) for x in deposit.lines],
            slip=slip,
        )
        return [deposit, again]
    if slip == "late_dated":
        deposit.txn_date += timedelta(days=4 + days)
    elif slip == "net_as_income" and fee_lines and income:
        biggest = max(income, key=lambda line: line.amount)
        if biggest.amount <= fees:
            return [deposit]
        biggest.amount -= fees
        deposit.lines = [line for line in deposit.lines if line.account != FEES]
    elif slip == "mistyped_fee" and fee_lines:
        fee_lines[0].amount -= delta
    elif slip == "mistyped_income" and income:
        income[0].amount += delta
    else:
        return [deposit]
    deposit.slip = slip
    return [deposit]


def _orphan_deposits(world: World, s: QuickBooksDataSettings, now: int) -> list[Txn]:
    """Deposits naming a payout the processor does not have (another account's, or a typo)."""
    if s.orphan_deposit_rate <= 0:
        return []
    seed, offices = world.spec.seed, [o.key for o in world.spec.offices]
    day = (world.spec.now_utc - timedelta(days=world.spec.history_days)).date()
    out = []
    while midnight(day) <= now:
        if day.weekday() < 5 and unit(seed, "orphan-deposit", day) < s.orphan_deposit_rate:
            gross = 5_000 + int(unit(seed, "orphan-deposit-amount", day) * 95_000)
            office = offices[int(unit(seed, "orphan-deposit-office", day) * len(offices))]
            payout_id = stable_id("po", seed, "orphan-deposit", day)
            lines = [
                Line(gross, "Card payments: card terminal", INCOME_ACCOUNT[TERMINAL], office),
                Line(-fee_cents(gross, True, s.stripe), "Processor fees", FEES),
            ]
            out.append(
                Txn(
                    kind="Deposit",
                    key=payout_id,
                    created=midnight(day) + 16 * HOUR,
                    txn_date=day,
                    note=f"Stripe payout {payout_id}",
                    lines=lines,
                    slip="orphan_deposit",
                )
            )
        day += timedelta(days=1)
    return out


def _fee_allocations(deposits: list[Txn], processor: StripeData) -> list[Txn]:
    """Per month: the fees of that month's deposits moved to each location's Class."""
    by_month: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in deposits:
        if d.key not in processor.payouts_by_id:  # a deposit naming no payout: nothing to split
            continue
        for t in expanded(processor.payouts_by_id[d.key], processor):
            if t.fee:
                by_month[d.txn_date.replace(day=1)][t.charge.location] += t.fee
    out = []
    for month, fees in sorted(by_month.items()):
        next_month = (month + timedelta(days=32)).replace(day=1)
        label = month.strftime("%B %Y")
        lines = [
            Line(c, f"Merchant fees {label}", FEES, loc, "Debit") for loc, c in sorted(fees.items())
        ]
        lines.append(Line(sum(fees.values()), f"Merchant fees {label}", FEES, None, "Credit"))
        out.append(
            Txn(
                kind="JournalEntry",
                key=f"fees-{month:%Y-%m}",
                created=midnight(next_month + timedelta(days=2)) + 16 * HOUR,
                txn_date=next_month - timedelta(days=1),
                note=f"Merchant fees by location, {label}",
                lines=lines,
                doc_number=f"FEES-{month:%Y-%m}",
            )
        )
    return out


def _write_offs(processor: StripeData) -> list[Txn]:
    """A lost chargeback leaves Disputed Card Payments for Chargeback Losses."""
    out = []
    for d in processor.disputes:
        if d.won or d.closes_at > processor.now:
            continue
        amount, location = d.charge.amount, d.charge.location
        out.append(
            Txn(
                kind="JournalEntry",
                key=d.id,
                created=d.closes_at + DAY,
                txn_date=utc_day(d.closes_at),
                note=f"Chargeback lost: {d.id}",
                lines=[
                    Line(amount, "Chargeback lost", CHARGEBACKS, location, "Debit"),
                    Line(amount, "Chargeback lost", DISPUTED, location, "Credit"),
                ],
                doc_number=f"CB-{d.id[3:17]}",
            )
        )
    return out
