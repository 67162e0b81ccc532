"""Decide what to write back: read the writeback marts, apply the organisation's settings, and
describe each write (writeback/writes.py) for the outbox.

The marts (dbt_project/models/marts/writeback) say what *could* be written and to which record;
the settings (config ``writeback``) say what *will* be, when (instant or at the daily run) and for
which amount. Reads the analysts' read-only copy of the marts, so planning never waits for (or
blocks) the warehouse's single writer.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from chairside.config import Organisation
from writeback import writes
from writeback.outbox import Write, write_key


def daily_due(organisation: Organisation, now: datetime) -> datetime:
    """The next daily writeback run at or after ``now`` (writeback.daily_at, schedule zone)."""
    zone = ZoneInfo(organisation.sync.schedule_timezone)
    hour, minute = (int(part) for part in organisation.writeback.daily_at.split(":"))
    local = now.astimezone(zone)
    run = datetime.combine(local.date(), time(hour, minute), zone)
    if run < local:
        run = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), zone)
    return run.astimezone(UTC)


def plan(database: Path | str, organisation: Organisation, now: datetime) -> list[Write]:
    """Every write the settings ask for, as of the marts in ``database``."""
    settings = organisation.writeback
    daily = daily_due(organisation, now)

    def due(timing: str) -> datetime:
        return now if timing == "instant" else daily

    zones = {c.id: ZoneInfo(c.timezone) for c in organisation.connections}
    out: list[Write] = []
    with duckdb.connect(str(database), read_only=True) as con:
        if any(setting.enabled for setting in settings.payments.values()):
            out += _payments(con, settings, zones, due)
        if settings.statuses.enabled:
            out += _replies(con, due(settings.statuses.timing))
        if settings.commlogs.enabled:
            out += _commlogs(con, due(settings.commlogs.timing))
        if settings.quickbooks.enabled:
            out += _deposits(con, settings.quickbooks, due(settings.quickbooks.timing))
    return out


def _records(con, sql: str) -> list[dict]:
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _payments(con, settings, zones, due) -> list[Write]:
    out = []
    rows = _records(con, "select * from marts.wb_payments where writeback_state = 'ready'")
    for row in rows:
        setting = settings.payment(row["payment_type"])
        if not setting.enabled:
            continue
        kind, target, ref = "pms_payment", row["pms_connection_id"], row["source_charge_id"]
        gross, fee = Decimal(row["gross_amount"]), Decimal(row["fee_amount"])
        paid_on = row["created_at"].astimezone(zones.get(target, UTC)).date()
        payload = writes.PmsPayment(
            patient_id=row["source_patient_id"],
            location_ref=row["pms_location_ref"],
            amount=gross - fee if setting.amount == "net" else gross,
            gross=gross,
            fee=fee,
            amount_basis=setting.amount,
            paid_on=paid_on,
            payment_type=row["payment_type"],
            pms_pay_type=setting.pms_pay_type,
            charge_id=ref,
            note=f"Card payment ({row['payment_type']}) via Chairside: gross {gross}, fee {fee}",
        )
        out.append(_write(kind, target, ref, payload, due(setting.timing)))
    return out


def _replies(con, due_at: datetime) -> list[Write]:
    out = []
    rows = _records(con, "select * from marts.wb_text_replies where writeback_state = 'ready'")
    for row in rows:
        common = {
            "appointment_id": row["source_appointment_id"],
            "patient_id": row["source_patient_id"],
            "message_ref": row["source_message_id"],
            "received_at": row["received_at"],
        }
        if row["intent"] == "confirm":
            kind, payload = "appointment_confirm", writes.AppointmentConfirm(**common)
        else:
            kind, payload = "appointment_cancel", writes.AppointmentCancel(**common)
        out.append(
            _write(kind, row["pms_connection_id"], row["source_message_id"], payload, due_at)
        )
    return out


def _commlogs(con, due_at: datetime) -> list[Write]:
    out = []
    rows = _records(con, "select * from marts.wb_call_summaries where writeback_state = 'ready'")
    for row in rows:
        minutes, seconds = divmod(int(row["talk_seconds"] or 0), 60)
        payload = writes.Commlog(
            patient_id=row["source_patient_id"],
            at=row["started_at"],
            note=(
                f"Chairside call summary: inbound call to {row['location_name']} answered, "
                f"talked {minutes} min {seconds} s."
            ),
            call_ref=row["source_call_id"],
        )
        out.append(
            _write("commlog", row["pms_connection_id"], row["source_call_id"], payload, due_at)
        )
    return out


def _deposits(con, books, due_at: datetime) -> list[Write]:
    first_day = date.fromisoformat(books.payouts_from)
    lines_by_payout: dict[str, list[dict]] = defaultdict(list)
    for row in _records(
        con, "select * from marts.wb_payout_deposit_lines order by payout_key, line_kind, amount"
    ):
        if row["arrival_date"] >= first_day:
            lines_by_payout[row["source_payout_id"]].append(row)
    out = []
    for payout_id, rows in lines_by_payout.items():
        kind, target = "qbo_deposit", books.connection
        key = write_key(kind, target, payout_id)
        locations = {r["org_location_id"] for r in rows if r["line_kind"] != "fee"}
        only = next(iter(locations)) if len(locations) == 1 else None
        payload = writes.QboDeposit(
            payout_id=payout_id,
            txn_date=rows[0]["arrival_date"],
            bank_account=books.bank_account,
            department=books.departments.get(only) if only else None,
            doc_number=payout_id[-21:],
            private_note=f"Processor payout {payout_id} {writes.marker(key, payout_id)}",
            net=Decimal(rows[0]["payout_amount"]),
            lines=[_deposit_line(books, r) for r in rows],
        )
        out.append(_write(kind, target, payout_id, payload, due_at))
    return out


def _deposit_line(books, row: dict) -> writes.DepositLine:
    kind, location = row["line_kind"], row["org_location_id"]
    if kind == "gross":
        account = books.income_accounts.get(row["payment_type"], books.default_income_account)
        description = f"{row['payment_type']} charges ({row['n_transactions']})"
    elif kind == "fee":
        account, description = books.fee_account, "Processing fees"
    else:
        account = books.refund_account
        description = (
            f"{'Refunds and disputes' if kind == 'refund' else 'Other'} ({row['n_transactions']})"
        )
    return writes.DepositLine(
        amount=Decimal(row["amount"]),
        account=account,
        description=description,
        class_name=books.classes.get(location) if location else None,
    )


def _write(kind: str, target: str, source_ref: str, payload, due_at: datetime) -> Write:
    return Write(kind, target, source_ref, payload.model_dump(mode="json"), due_at)
