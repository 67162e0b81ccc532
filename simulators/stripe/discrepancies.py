"""The reconciliation discrepancies a derived processor account holds, as truth rows.

Each row names one object (a payout, a charge or a PMS payment) and one code of
docs/reconciliation.md. Some are injected by ``StripeDataSettings`` knobs (charges no PMS payment
records, PMS card payments never charged, amounts keyed differently, anomalous pricing, payouts
the bank returns); two follow from the world itself: a refund or dispute netted inside a payout,
and a payout whose ordinary fees fall outside the group's expected band (a few small
card-not-present charges). The books simulator adds its own (``simulators.quickbooks``).
"""

from __future__ import annotations

from datetime import date
from typing import TypedDict

from simulators.stripe.data import Payout, StripeData, utc_day

NETTED = ("refund", "dispute", "dispute_reversal")


class Discrepancy(TypedDict):
    object_kind: str  # payout | deposit | charge | pms_payment
    object_id: str  # po_..., a books deposit Id, ch_..., "<office>:<PayNum>"
    code: str
    payout_id: str | None  # the payout it concerns, if any
    arrival_date: date | None  # that payout's arrival date
    office: str | None  # the PMS office of a charge or PMS payment
    pms: str | None  # that office's PMS vendor
    detail: str


def discrepancy(
    kind: str,
    object_id: str,
    code: str,
    detail: str,
    payout: Payout | None = None,
    office: str | None = None,
    pms: str | None = None,
) -> Discrepancy:
    return Discrepancy(
        object_kind=kind,
        object_id=object_id,
        code=code,
        payout_id=payout.id if payout else None,
        arrival_date=utc_day(payout.arrival_date) if payout else None,
        office=office,
        pms=pms,
        detail=detail,
    )


def processor_discrepancies(data: StripeData) -> list[Discrepancy]:
    """Every discrepancy the processor side holds as of the account's clock."""
    return _payout_rows(data) + _charge_rows(data) + _pms_payment_rows(data)


def _payout_rows(data: StripeData) -> list[Discrepancy]:
    low, high = data.settings.expected_fee_pct
    out = []
    for p in data.payouts:
        if data.payout_status(p) == "failed":
            out.append(discrepancy("payout", p.id, "payout_failed_or_reversed", "failed", p))
        netted = sorted({t.reporting_category for t in p.items} & set(NETTED))
        if netted:
            detail = ", ".join(netted)
            out.append(discrepancy("payout", p.id, "refund_or_chargeback_netted", detail, p))
        charges = [t for t in p.items if t.reporting_category == "charge"]
        gross, fee = sum(t.amount for t in charges), sum(t.fee for t in charges)
        # The same comparison the marts make: fee * 100 against the band times gross.
        if gross > 0 and not low * gross <= fee * 100 <= high * gross:
            out.append(discrepancy("payout", p.id, "fee_anomaly", f"{100 * fee / gross:.2f}%", p))
    return out


def _charge_rows(data: StripeData) -> list[Discrepancy]:
    paid_by = {t.charge.id: data.payouts_by_id.get(t.payout or "") for t in _charge_txns(data)}
    out = []
    for c in data.charges:
        payout = paid_by.get(c.id)
        if c.office is None:
            out.append(
                discrepancy(
                    "charge", c.id, "charge_not_posted_to_pms", "no PMS payment", payout,
                    office=c.location, pms=data.pms_of.get(c.location),
                )
            )  # fmt: skip
        elif c.pms_amount is not None and c.pms_amount != c.amount:
            out.append(
                discrepancy(
                    "charge", c.id, "pms_amount_mismatch",
                    f"charged {c.amount} cents, PMS records {c.pms_amount}", payout,
                    office=c.office, pms=data.pms_of.get(c.office),
                )
            )  # fmt: skip
    return out


def _charge_txns(data: StripeData):
    return (t for t in data.balance_transactions if t.reporting_category == "charge" and t.charge)


def _pms_payment_rows(data: StripeData) -> list[Discrepancy]:
    return [
        discrepancy(
            "pms_payment", f"{office}:{pay_num}", "pms_payment_without_charge",
            "card payment never charged", office=office, pms=data.pms_of.get(office),
        )
        for office, pay_num in data.unrecorded.select("office", "PayNum").iter_rows()
    ] if data.unrecorded.height else []  # fmt: skip
