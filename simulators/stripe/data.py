"""The group's card-processor account, derived purely from the world (one Stripe-shaped account).

Every PMS card payment (a ``payments`` row whose PayType definition is "Credit Card" or "Patient
Portal", in any office of any PMS) is one charge, created when the payment was entered. Refunds
and disputes hit a hash-chosen few charges some days later; every money movement has a balance
transaction (gross ``amount``, ``fee``, ``net`` in cents, ``available_on`` N business days
later for charges); each business day an automatic payout sweeps everything that has become
available (``GET /v1/balance_transactions?payout=`` itemizes it).

Everything is a function of the world's payments and clock: ids are hashes of what a record
stands for (``ch_`` of office + PayNum, ``po_`` of the payout day), times come from the payment,
and a record exists once its creation time has passed. So records stay stable as the world
advances; only the states Stripe itself changes later (payout and dispute status, a charge's
refunded/disputed flags, a balance transaction becoming available) move with the clock.

Known reconciliation discrepancies are off by default (``missing_charge_rate``,
``orphan_charge_rate``, ``pms_amount_mismatch_rate``, ``fee_anomaly_rate``,
``failed_payout_rate``) so a reconciliation test (and the demo world, ``python -m simulators``)
can switch them on; each is chosen by a stable hash of what it hits, so it stays put as the world
advances. The truth tables record which charge belongs to which PMS payment, and
``simulators.stripe.discrepancies`` lists the discrepancies the account holds.

Online payments (``online_payment_rate``, off by default): patients of the offices whose PMS
takes a payment write (Open Dental, NexHealth) pay through links the practice texts them. The
processor has these charges (metadata ``origin: "online"``, ``patient_ref`` = the office and the
patient's id in its PMS, no ``pms_payment_ref``); the PMS does not, so each is a charge not
posted to the PMS until Chairside writes it back: a payment whose note carries Chairside's
marker naming the charge (``writeback.writes.marker``) posts it. ``truth_online_payments`` lists
them. Each is drawn by stable hashes of its office, day and slot, never from the draws other
charges use, so switching them on leaves every other charge as it was.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import polars as pl

from simulators.nexhealth.data import LOCATION_ID_BASE, nex_id
from simulators.world import OfficeSpec, World

CARD_PAY_TYPES = ("Credit Card", "Patient Portal")
# metadata.payment_type of a charge. The world has no insurance payments made by card (its
# payments are patients'), so "insurance" is in the vocabulary but never derived.
PAYMENT_TYPES = (
    "card_terminal",
    "patient_portal",
    "payment_plan",
    "membership",
    "outstanding_balance_collection",
    "insurance",
)
# Online payments: (payment_type, weight, amount range in cents). Never below $29: card-not-present
# pricing (2.9% + 30c) stays inside the expected fee band, so online charges alone never make a
# payout's fees anomalous.
ONLINE_PAYMENTS = (
    ("patient_portal", 0.4, (3_000, 45_000)),
    ("payment_plan", 0.2, (5_000, 30_000)),
    ("membership", 0.15, (2_900, 5_900)),
    ("outstanding_balance_collection", 0.25, (3_000, 90_000)),
)
# The PMSs Chairside can post a payment to: only their offices' patients get payment links.
WRITABLE_PMS = ("opendental", "nexhealth")
# The demo's scale (``online_payment_rate``): a few online payments per office and week.
DEMO_ONLINE_PAYMENT_RATE = 0.5
# Chairside's marker on a PMS payment it posted for a charge: "[chairside <key> <charge id>]".
WRITTEN_BACK = r"\[chairside [^\]]*?\b(ch_[0-9A-Za-z]{24})\]"
DISPUTE_REASONS = ("fraudulent", "product_not_received", "duplicate", "general", "unrecognized")
CARD_BRANDS = ("visa", "visa", "mastercard", "amex", "discover")
DAY = 86_400
HOUR = 3_600
EVIDENCE_DAYS = 7  # a dispute needs a response within this many days
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class StripeDataSettings:
    """How the processor behaves. Fees and timings are an account's terms, so settings."""

    card_fee_bps: int = 290  # card not present: 2.9% + 30c
    card_fee_fixed_cents: int = 30
    card_present_fee_bps: int = 270  # terminal: 2.7% + 5c
    card_present_fee_fixed_cents: int = 5
    refund_rate: float = 0.02  # share of charges refunded (fully or in part)
    partial_refund_share: float = 0.4
    dispute_rate: float = 0.01
    dispute_win_rate: float = 0.5
    dispute_fee_cents: int = 1500
    dispute_days: tuple[int, int] = (30, 60)  # from dispute to decision
    payout_delay_business_days: int = 2  # charge -> available_on
    payout_hour_utc: int = 4  # the daily automatic payout is created at this hour
    failed_payout_rate: float = 0.0  # knob: share of payouts the bank returns
    # Discrepancies (default none): PMS card payments with no charge, and charges with no PMS
    # payment (probability per day of one such charge).
    missing_charge_rate: float = 0.0
    orphan_charge_rate: float = 0.0
    # Share of PMS card payments charged for a different amount than the PMS recorded (the
    # terminal keyed by hand).
    pms_amount_mismatch_rate: float = 0.0
    # Probability per business day that the charges becoming available that day (one payout)
    # are priced at the anomalous rate (a pricing error on the processor's side).
    fee_anomaly_rate: float = 0.0
    anomalous_fee_bps: int = 690
    # The effective fee band the group expects (config reconciliation.fee_min_pct/fee_max_pct).
    # It only labels the truth: a payout of a few small card-not-present charges can leave the
    # band with ordinary pricing, and the truth says so.
    expected_fee_pct: tuple[float, float] = (1.5, 4.0)
    # Expected online payments (text-to-pay, plan and membership instalments, balance
    # collection) per Open Dental or NexHealth office and day; 0 (the default) makes none.
    online_payment_rate: float = 0.0


# --- stable hashing ------------------------------------------------------------------------


def _digest(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=18).digest(), "big")


def unit(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for what ``parts`` name."""
    return (_digest(*parts) % 1_000_000_007) / 1_000_000_007


def stable_id(prefix: str, *parts: object) -> str:
    """A Stripe-looking id (``ch_`` + 24 base62 characters) stable for what ``parts`` name."""
    n, chars = _digest(prefix, *parts), []
    for _ in range(24):
        n, r = divmod(n, 62)
        chars.append(_B62[r])
    return f"{prefix}_{''.join(chars)}"


# --- calendar ------------------------------------------------------------------------------


def utc_day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def add_business_days(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        n -= day.weekday() < 5
    return day


# --- records -------------------------------------------------------------------------------


@dataclass
class Charge:
    id: str
    created: int
    amount: int
    fee: int
    card_present: bool
    payment_type: str
    location: str
    office: str | None  # None: a charge with no PMS payment behind it
    pay_num: int | None
    pat_num: int | None
    clinic_num: int | None
    pms_amount: int | None = None  # cents the PMS payment records (None: no PMS payment)
    refund: Refund | None = None
    dispute: Dispute | None = None
    # An online payment: paid by the patient through a link; office/pay_num are set once
    # Chairside posted it to the PMS. patient_id: the patient's id in the office's PMS.
    online: bool = False
    patient_id: int | None = None


@dataclass
class Refund:
    id: str
    charge: Charge
    created: int
    amount: int


@dataclass
class Dispute:
    id: str
    charge: Charge
    created: int
    closes_at: int
    won: bool
    reason: str


@dataclass
class BalanceTransaction:
    id: str
    type: str
    reporting_category: str
    amount: int
    fee: int
    source: str
    created: int
    available_on: int
    charge: Charge | None = None  # the charge a charge/refund/dispute movement belongs to
    payout: str | None = None  # the automatic payout that paid it out

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass
class Payout:
    id: str
    day: date
    created: int
    arrival_date: int
    amount: int
    items: list[BalanceTransaction]
    fails: bool
    balance_transaction: BalanceTransaction | None = None
    failure: BalanceTransaction | None = None


@dataclass
class StripeData:
    now: int
    settings: StripeDataSettings
    charges: list[Charge]
    refunds: list[Refund]
    disputes: list[Dispute]
    balance_transactions: list[BalanceTransaction]
    payouts: list[Payout]
    unrecorded: pl.DataFrame  # PMS card payments that have no charge (a discrepancy)
    pms_of: dict[str, str] = field(default_factory=dict)  # office key -> its PMS vendor

    # -- states that change with the clock --------------------------------------------------

    def payout_status(self, p: Payout) -> str:
        if self.now < p.created + HOUR:
            return "pending"
        if self.now < p.arrival_date:
            return "in_transit"
        return "failed" if p.fails else "paid"

    def dispute_status(self, d: Dispute) -> str:
        if self.now >= d.closes_at:
            return "won" if d.won else "lost"
        return "needs_response" if self.now < d.created + EVIDENCE_DAYS * DAY else "under_review"

    # -- API objects --------------------------------------------------------------------------

    def charge_object(self, c: Charge) -> dict:
        method = "card_present" if c.card_present else "card"
        brand = CARD_BRANDS[_digest("brand", c.id) % len(CARD_BRANDS)]
        metadata = {"payment_type": c.payment_type, "location": c.location}
        if c.online:
            metadata |= {
                "patient_ref": f"{c.location}:{c.patient_id}",
                "pms_clinic_num": str(c.clinic_num),
                "origin": "online",
            }
        elif c.office is not None:
            metadata |= {
                "patient_ref": f"{c.office}:{c.pat_num}",
                "pms_payment_ref": f"{c.office}:{c.pay_num}",
                "pms_clinic_num": str(c.clinic_num),
            }
        refunded = c.refund.amount if c.refund else 0
        return {
            "id": c.id,
            "object": "charge",
            "amount": c.amount,
            "amount_captured": c.amount,
            "amount_refunded": refunded,
            "balance_transaction": stable_id("txn", c.id),
            "captured": True,
            "created": c.created,
            "currency": "usd",
            "description": "Dental care payment",
            "disputed": c.dispute is not None,
            "livemode": False,
            "metadata": metadata,
            "paid": True,
            "payment_intent": stable_id("pi", c.id),
            "payment_method_details": {"type": method, method: {"brand": brand}},
            "refunded": refunded == c.amount,
            "status": "succeeded",
        }

    def refund_object(self, r: Refund) -> dict:
        return {
            "id": r.id,
            "object": "refund",
            "amount": r.amount,
            "balance_transaction": stable_id("txn", r.id),
            "charge": r.charge.id,
            "created": r.created,
            "currency": "usd",
            "metadata": {},
            "payment_intent": stable_id("pi", r.charge.id),
            "reason": "requested_by_customer",
            "status": "succeeded",
        }

    def dispute_object(self, d: Dispute) -> dict:
        status = self.dispute_status(d)
        txns = [t for t in self._dispute_txns.get(d.id, ()) if t.created <= self.now]
        return {
            "id": d.id,
            "object": "dispute",
            "amount": d.charge.amount,
            "balance_transactions": [self.balance_transaction_object(t) for t in txns],
            "charge": d.charge.id,
            "created": d.created,
            "currency": "usd",
            "evidence_details": {
                "due_by": d.created + EVIDENCE_DAYS * DAY,
                "has_evidence": status != "needs_response",
                "past_due": False,
                "submission_count": int(status != "needs_response"),
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": stable_id("pi", d.charge.id),
            "reason": d.reason,
            "status": status,
        }

    def balance_transaction_object(self, t: BalanceTransaction) -> dict:
        fee_details = (
            [
                {
                    "amount": t.fee,
                    "currency": "usd",
                    "description": "Stripe fees",
                    "type": "stripe_fee",
                }
            ]
            if t.fee
            else []
        )
        return {
            "id": t.id,
            "object": "balance_transaction",
            "amount": t.amount,
            "available_on": t.available_on,
            "created": t.created,
            "currency": "usd",
            "description": _BT_DESCRIPTIONS.get(t.reporting_category),
            "exchange_rate": None,
            "fee": t.fee,
            "fee_details": fee_details,
            "net": t.net,
            "reporting_category": t.reporting_category,
            "source": t.source,
            "status": "available" if t.available_on <= self.now else "pending",
            "type": t.type,
        }

    def payout_object(self, p: Payout) -> dict:
        status = self.payout_status(p)
        failed = status == "failed"
        return {
            "id": p.id,
            "object": "payout",
            "amount": p.amount,
            "arrival_date": p.arrival_date,
            "automatic": True,
            "balance_transaction": p.balance_transaction.id if p.balance_transaction else None,
            "created": p.created,
            "currency": "usd",
            "description": "STRIPE PAYOUT",
            "destination": stable_id("ba", "group-bank-account"),
            "failure_balance_transaction": p.failure.id if failed and p.failure else None,
            "failure_code": "account_closed" if failed else None,
            "failure_message": "The bank account has been closed." if failed else None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "reconciliation_status": "completed" if status == "paid" else "in_progress",
            "source_type": "card",
            "statement_descriptor": None,
            "status": status,
            "type": "bank_account",
        }

    @cached_property
    def _dispute_txns(self) -> dict[str, list[BalanceTransaction]]:
        out: dict[str, list[BalanceTransaction]] = {}
        for t in self.balance_transactions:
            if t.source.startswith("dp_"):
                out.setdefault(t.source, []).append(t)
        return out

    @cached_property
    def payouts_by_id(self) -> dict[str, Payout]:
        return {p.id: p for p in self.payouts}

    def itemized(self, p: Payout) -> list[BalanceTransaction]:
        """What ``?payout=`` lists: the payout's own transaction and everything it paid out."""
        own = [p.balance_transaction] if p.balance_transaction else []
        return [*own, *p.items]

    # -- truth ------------------------------------------------------------------------------

    def frames(self) -> dict[str, pl.DataFrame]:
        """Everything derived, as flat tables (``truth_*``: links no API shows)."""
        return {
            "stripe_charges": frame_of([flatten(self.charge_object(c)) for c in self.charges]),
            "stripe_refunds": frame_of([flatten(self.refund_object(r)) for r in self.refunds]),
            "stripe_disputes": frame_of(
                [
                    flatten(self.dispute_object(d), drop=("balance_transactions",))
                    for d in self.disputes
                ]
            ),
            "stripe_balance_transactions": frame_of(
                [
                    {
                        **flatten(self.balance_transaction_object(t), drop=("fee_details",)),
                        "payout": t.payout,
                    }
                    for t in self.balance_transactions
                ]
            ),
            "stripe_payouts": frame_of([flatten(self.payout_object(p)) for p in self.payouts]),
            "truth_stripe_charge_links": frame_of(
                [
                    {
                        "charge_id": c.id,
                        "office": c.office,
                        "PayNum": c.pay_num,
                        "PatNum": c.pat_num if c.office is not None else None,
                    }
                    for c in self.charges
                ]
            ),
            "truth_stripe_unrecorded_payments": self.unrecorded,
            "truth_online_payments": self.online_frame(),
        }

    def online_frame(self) -> pl.DataFrame:
        """The online payments: which office's patient paid, and whether it is posted yet."""
        rows = [
            (c.id, c.location, self.pms_of.get(c.location), c.patient_id, c.pat_num,
             c.clinic_num, c.payment_type, c.amount, c.fee, c.created, c.pay_num)
            for c in self.charges
            if c.online
        ]  # fmt: skip
        return pl.DataFrame(rows, schema=ONLINE_SCHEMA, orient="row")


ONLINE_SCHEMA = {
    "charge_id": pl.String,
    "office": pl.String,
    "pms": pl.String,
    "patient_id": pl.Int64,  # the patient's id in the office's PMS (Open Dental PatNum, ...)
    "PatNum": pl.Int64,  # the world's key of that patient record
    "clinic_num": pl.Int64,
    "payment_type": pl.String,
    "amount_cents": pl.Int64,
    "fee_cents": pl.Int64,
    "created": pl.Int64,  # UTC epoch seconds
    "posted_pay_num": pl.Int64,  # the PMS payment Chairside posted it as (null: not yet)
}

_BT_DESCRIPTIONS = {
    "charge": "Dental care payment",
    "refund": "REFUND FOR CHARGE (Dental care payment)",
    "dispute": "Chargeback withdrawal",
    "dispute_reversal": "Chargeback reversal",
    "payout": "STRIPE PAYOUT",
    "payout_reversal": "Payout failure",
}


def flatten(obj: dict, prefix: str = "", drop: tuple[str, ...] = ()) -> dict:
    """Nested objects as dotted keys ({"a": {"b": 1}} -> {"a.b": 1}), for truth tables."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in drop:
            continue
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def frame_of(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


# --- derivation ----------------------------------------------------------------------------


def card_payments(world: World) -> pl.DataFrame:
    """The world's card payments with their creation time as UTC epoch seconds."""
    with world.lock:
        payments, definitions = world.tables["payments"], world.tables["definitions"]
    types = definitions.filter(
        (pl.col("Category") == 10) & pl.col("ItemName").is_in(CARD_PAY_TYPES)
    ).select("office", pl.col("DefNum").alias("PayType"), pl.col("ItemName").alias("pay_type"))
    # A payment Chairside posted for a charge is that charge, not a new card payment.
    posted = pl.col("PayNote").fill_null("").str.contains("[chairside ", literal=True)
    cards = payments.filter(~posted).join(types, on=["office", "PayType"])
    # Card payments are stamped when entered and never edited: SecDateTEdit is the charge time.
    parts = [
        cards.filter(pl.col("office") == o.key).with_columns(
            created=_utc_epoch(pl.col("SecDateTEdit"), o.timezone)
        )
        for o in world.spec.offices
    ]
    columns = ("office", "PayNum", "PatNum", "ClinicNum", "PayAmt", "IsRecurringCC", "PayNote")
    return (
        pl.concat(parts).select(*columns, "pay_type", "created").sort("created", "office", "PayNum")
    )


def _utc_epoch(local: pl.Expr, timezone: str) -> pl.Expr:
    """Office wall-clock time -> UTC epoch seconds (a time in the spring-forward gap: +1 h)."""

    def zoned(expr: pl.Expr) -> pl.Expr:
        return expr.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")

    return pl.coalesce(zoned(local), zoned(local + pl.duration(hours=1))).dt.epoch("s")


def payment_type(row: dict) -> str:
    """What the payment was for, from what the PMS row says about it."""
    if row["pay_type"] == "Patient Portal":
        return "patient_portal"
    if row["IsRecurringCC"]:
        # A card on file charged on a schedule: payment plans and memberships look alike.
        split = unit("recurring", row["office"], row["PayNum"]) < 0.5
        return "payment_plan" if split else "membership"
    if row["PayNote"] == "Statement payment":
        return "outstanding_balance_collection"
    return "card_terminal"


def fee_cents(
    amount: int, card_present: bool, s: StripeDataSettings, anomalous: bool = False
) -> int:
    bps, fixed = (
        (s.card_present_fee_bps, s.card_present_fee_fixed_cents)
        if card_present
        else (s.card_fee_bps, s.card_fee_fixed_cents)
    )
    if anomalous:
        bps = s.anomalous_fee_bps
    return (amount * bps + 5_000) // 10_000 + fixed


def available_day(created: int, s: StripeDataSettings) -> date:
    """The business day a charge becomes available, so the day of the payout that sweeps it."""
    return add_business_days(utc_day(created), s.payout_delay_business_days)


def anomalous_pricing(seed: int, created: int, s: StripeDataSettings) -> bool:
    """Whether a charge created then is priced wrong: chosen per payout day, so one payout."""
    return unit(seed, "fee-anomaly", available_day(created, s)) < s.fee_anomaly_rate


def derive(world: World, settings: StripeDataSettings | None = None) -> StripeData:
    """The processor account as of the world's clock."""
    s = settings or StripeDataSettings()
    seed = world.spec.seed
    with world.lock:
        now = int(world.now_utc.timestamp())
    cards = card_payments(world)
    unrecorded = [
        unit(seed, "missing", office, paynum) < s.missing_charge_rate
        for office, paynum in cards.select("office", "PayNum").iter_rows()
    ]
    charges = [
        _charge(seed, row, s)
        for row, skip in zip(cards.iter_rows(named=True), unrecorded, strict=True)
        if not skip
    ]
    charges += _orphan_charges(world, s, now)
    charges += _online_charges(world, s, now)
    charges.sort(key=lambda c: (c.created, c.id))
    refunds, disputes = _refunds_and_disputes(seed, charges, s, now)
    txns = _movements(charges, refunds, disputes, s, now)
    payouts = _payouts(seed, txns, s, now)
    txns += [t for p in payouts for t in (p.balance_transaction, p.failure) if t is not None]
    txns = [t for t in txns if t.created <= now]
    txns.sort(key=lambda t: (t.created, t.id))
    return StripeData(
        now=now,
        settings=s,
        charges=charges,
        refunds=refunds,
        disputes=disputes,
        balance_transactions=txns,
        payouts=payouts,
        unrecorded=cards.filter(pl.Series(unrecorded, dtype=pl.Boolean)).drop("created"),
        pms_of={o.key: o.pms for o in world.spec.offices},
    )


def _charge(seed: int, row: dict, s: StripeDataSettings) -> Charge:
    kind = payment_type(row)
    recorded = round(row["PayAmt"] * 100)
    amount = recorded
    if unit(seed, "pms-amount", row["office"], row["PayNum"]) < s.pms_amount_mismatch_rate:
        # Keyed by hand for a different amount: 1.00 to 20.00 off, either way (never below 1.00).
        delta = 100 + int(unit(seed, "pms-amount-delta", row["office"], row["PayNum"]) * 1_900)
        less = unit(seed, "pms-amount-sign", row["office"], row["PayNum"]) < 0.5
        amount = recorded - delta if less and recorded - delta >= 100 else recorded + delta
    card_present = kind == "card_terminal"
    anomalous = anomalous_pricing(seed, row["created"], s)
    return Charge(
        id=stable_id("ch", seed, row["office"], row["PayNum"]),
        created=row["created"],
        amount=amount,
        fee=fee_cents(amount, card_present, s, anomalous),
        card_present=card_present,
        payment_type=kind,
        location=row["office"],
        office=row["office"],
        pay_num=row["PayNum"],
        pat_num=row["PatNum"],
        clinic_num=row["ClinicNum"],
        pms_amount=recorded,
    )


def _orphan_charges(world: World, s: StripeDataSettings, now: int) -> list[Charge]:
    """At most one charge a day that no PMS payment records (a terminal used off the books)."""
    if s.orphan_charge_rate <= 0:
        return []
    seed, offices = world.spec.seed, [o.key for o in world.spec.offices]
    start = world.spec.now_utc - timedelta(days=world.spec.history_days)
    day, out = start.date(), []
    while midnight(day) <= now:
        if unit(seed, "orphan", day) < s.orphan_charge_rate:
            created = midnight(day) + 14 * HOUR + int(unit(seed, "orphan-time", day) * 4 * HOUR)
            amount = 2_000 + int(unit(seed, "orphan-amount", day) * 38_000)
            if created <= now:
                out.append(
                    Charge(
                        id=stable_id("ch", seed, "orphan", day),
                        created=created,
                        amount=amount,
                        fee=fee_cents(amount, True, s, anomalous_pricing(seed, created, s)),
                        card_present=True,
                        payment_type="card_terminal",
                        location=offices[_digest(seed, "orphan-office", day) % len(offices)],
                        office=None,
                        pay_num=None,
                        pat_num=None,
                        clinic_num=None,
                    )
                )
        day += timedelta(days=1)
    return out


def written_back(world: World) -> dict[str, tuple[str, int]]:
    """Charge id -> (office, PayNum) of the PMS payment Chairside posted it as."""
    with world.lock:
        payments = world.tables["payments"]
    notes = payments.select(
        "office", "PayNum", charge=pl.col("PayNote").str.extract(WRITTEN_BACK, 1)
    ).drop_nulls("charge")
    return {charge: (office, paynum) for office, paynum, charge in notes.iter_rows()}


class _PatientRing:
    """An office's patients on a hash ring: a draw picks the first one (clockwise) that was
    registered before the payment day and is an active patient. A patient joining or leaving
    the office moves only the picks that landed on them, so payments keep their patient as the
    world advances (unless that very patient is later made inactive)."""

    def __init__(self, seed: int, patients: pl.DataFrame) -> None:
        rows = sorted(
            (unit(seed, "online-ring", pat), pat, status, entry, clinic)
            for pat, status, entry, clinic in patients.select(
                "PatNum", "PatStatus", "SecDateEntry", "ClinicNum"
            ).iter_rows()
        )
        self.keys = [row[0] for row in rows]
        self.rows = [row[1:] for row in rows]

    def pick(self, draw: float, day: date) -> tuple[int, int] | None:
        """(PatNum, ClinicNum) of the patient ``draw`` lands on, among those eligible on ``day``."""
        start, n = bisect_left(self.keys, draw), len(self.rows)
        for k in range(n):
            pat, status, entry, clinic = self.rows[(start + k) % n]
            if status == "Patient" and entry is not None and entry < day:
                return pat, clinic
        return None


def _online_charges(world: World, s: StripeDataSettings, now: int) -> list[Charge]:
    """Payments patients made through links the practice texted them (no PMS payment)."""
    if s.online_payment_rate <= 0:
        return []
    seed = world.spec.seed
    slots = max(1, math.ceil(2 * s.online_payment_rate))
    chance = s.online_payment_rate / slots
    first = (world.spec.now_utc - timedelta(days=world.spec.history_days)).date()
    posted = written_back(world)
    with world.lock:
        patients = world.tables["patients"]
    out = []
    for index, office in enumerate(world.spec.offices):
        if office.pms not in WRITABLE_PMS:
            continue
        ring = _PatientRing(seed, patients.filter(pl.col("office") == office.key))
        day = first
        while midnight(day) <= now:
            for slot in range(slots):
                key = (office.key, day, slot)
                if unit(seed, "online", *key) >= chance:
                    continue
                # US daytime and evening: 13:00 to 03:00 UTC.
                created = (
                    midnight(day) + 13 * HOUR + int(unit(seed, "online-time", *key) * 14 * HOUR)
                )
                patient = ring.pick(unit(seed, "online-patient", *key), day)
                if created <= now and patient is not None:
                    out.append(
                        _online_charge(seed, s, office, index, key, created, patient, posted)
                    )
            day += timedelta(days=1)
    return out


def _online_charge(
    seed, s, office: OfficeSpec, index: int, key, created, patient, posted
) -> Charge:
    kinds = [kind for kind, _, _ in ONLINE_PAYMENTS]
    weights = [weight for _, weight, _ in ONLINE_PAYMENTS]
    kind = _weighted(unit(seed, "online-type", *key), kinds, weights)
    low, high = next(span for k, _, span in ONLINE_PAYMENTS if k == kind)
    amount = low + int(unit(seed, "online-amount", *key) * (high - low))
    if kind in ("payment_plan", "membership"):
        amount = max(low, amount // 100 * 100)  # instalments are whole dollars
    pat_num, clinic = patient
    charge_id = stable_id("ch", seed, "online", *key)
    office_key, pay_num = posted.get(charge_id, (None, None))
    return Charge(
        id=charge_id,
        created=created,
        amount=amount,
        fee=fee_cents(amount, False, s, anomalous_pricing(seed, created, s)),
        card_present=False,
        payment_type=kind,
        location=office.key,
        office=office_key,
        pay_num=pay_num,
        pat_num=pat_num,
        clinic_num=clinic,
        online=True,
        patient_id=pms_patient_id(office, index, pat_num),
    )


def _weighted(draw: float, names: list[str], weights: list[float]) -> str:
    total, edge = sum(weights), 0.0
    for name, weight in zip(names, weights, strict=True):
        edge += weight / total
        if draw < edge:
            return name
    return names[-1]


def pms_patient_id(office: OfficeSpec, index: int, pat_num: int) -> int:
    """The id the office's PMS simulator serves for a patient (``index``: the office's position
    in the world spec): NexHealth's own ids, Open Dental's PatNum."""
    if office.pms == "nexhealth":
        return nex_id(LOCATION_ID_BASE + index, pat_num)
    return pat_num


def _refunds_and_disputes(
    seed: int, charges: list[Charge], s: StripeDataSettings, now: int
) -> tuple[list[Refund], list[Dispute]]:
    refunds, disputes = [], []
    for c in charges:
        if unit(seed, "refund", c.id) < s.refund_rate:
            created = c.created + DAY + int(unit(seed, "refund-delay", c.id) * 10 * DAY)
            share = unit(seed, "refund-share", c.id)
            amount = c.amount
            if share < s.partial_refund_share:
                amount = max(100, min(c.amount, round(c.amount * (0.2 + share))))
            if created <= now:
                c.refund = Refund(stable_id("re", c.id), c, created, amount)
                refunds.append(c.refund)
        elif unit(seed, "dispute", c.id) < s.dispute_rate:
            created = c.created + 5 * DAY + int(unit(seed, "dispute-delay", c.id) * 35 * DAY)
            low, high = s.dispute_days
            closes = created + (low + int(unit(seed, "dispute-length", c.id) * (high - low))) * DAY
            if created <= now:
                reason = DISPUTE_REASONS[_digest(seed, "reason", c.id) % len(DISPUTE_REASONS)]
                won = unit(seed, "dispute-won", c.id) < s.dispute_win_rate
                c.dispute = Dispute(stable_id("dp", c.id), c, created, closes, won, reason)
                disputes.append(c.dispute)
    refunds.sort(key=lambda r: (r.created, r.id))
    disputes.sort(key=lambda d: (d.created, d.id))
    return refunds, disputes


def _movements(
    charges: list[Charge],
    refunds: list[Refund],
    disputes: list[Dispute],
    s: StripeDataSettings,
    now: int,
) -> list[BalanceTransaction]:
    """Balance transactions of charges, refunds and disputes (payouts add their own later).

    Charges become available N business days later; debits leave the balance at once.
    """
    out = []
    for c in charges:
        available = midnight(add_business_days(utc_day(c.created), s.payout_delay_business_days))
        out.append(_txn(c.id, "charge", "charge", c.amount, c.fee, c.created, available, c))
    out += [
        _txn(r.id, "refund", "refund", -r.amount, 0, r.created, r.created, r.charge)
        for r in refunds
    ]
    for d in disputes:
        amount, fee = d.charge.amount, s.dispute_fee_cents
        out.append(
            _txn(d.id, "adjustment", "dispute", -amount, fee, d.created, d.created, d.charge)
        )
        if d.won and d.closes_at <= now:
            reversal = _txn(
                d.id,
                "adjustment",
                "dispute_reversal",
                amount,
                0,
                d.closes_at,
                d.closes_at,
                d.charge,
            )
            reversal.id = stable_id("txn", d.id, "reversal")
            out.append(reversal)
    return out


def _txn(
    source: str,
    kind: str,
    category: str,
    amount: int,
    fee: int,
    created: int,
    available_on: int,
    charge: Charge | None = None,
) -> BalanceTransaction:
    return BalanceTransaction(
        stable_id("txn", source), kind, category, amount, fee, source, created, available_on, charge
    )


def _payouts(
    seed: int, txns: list[BalanceTransaction], s: StripeDataSettings, now: int
) -> list[Payout]:
    """Daily automatic payouts: each business day sweeps what became available by midnight.

    A day whose sweep would not be positive pays nothing and carries its items forward. A
    failed payout's money comes back as a ``payout_failure`` transaction on its arrival date,
    which the next payout sweeps up again.
    """
    queue = sorted(txns, key=lambda t: (t.available_on, t.id))
    if not queue:
        return []
    payouts: list[Payout] = []
    pending: list[BalanceTransaction] = []
    returned: list[BalanceTransaction] = []
    i, day = 0, utc_day(queue[0].available_on)
    while midnight(day) + s.payout_hour_utc * HOUR <= now:
        if day.weekday() < 5:
            cutoff = midnight(day)
            while i < len(queue) and queue[i].available_on <= cutoff:
                pending.append(queue[i])
                i += 1
            pending += [t for t in returned if t.available_on <= cutoff]
            returned = [t for t in returned if t.available_on > cutoff]
            total = sum(t.net for t in pending)
            if pending and total > 0:
                payout = _payout(seed, day, pending, total, s)
                payouts.append(payout)
                if payout.failure is not None:
                    returned.append(payout.failure)
                pending = []
        day += timedelta(days=1)
    return payouts


def _payout(
    seed: int, day: date, items: list[BalanceTransaction], total: int, s: StripeDataSettings
) -> Payout:
    pid = stable_id("po", seed, day)
    created = midnight(day) + s.payout_hour_utc * HOUR
    arrival = midnight(add_business_days(day, 1))
    for t in items:
        t.payout = pid
    own = _txn(pid, "payout", "payout", -total, 0, created, created)
    own.payout = pid
    fails = unit(seed, "payout-fails", pid) < s.failed_payout_rate
    failure = None
    if fails:
        failure = _txn(pid, "payout_failure", "payout_reversal", total, 0, arrival, arrival)
        failure.id = stable_id("txn", pid, "failure")
    return Payout(pid, day, created, arrival, total, list(items), fails, own, failure)
