"""Each writeback setting changes what is written: a payment type on or off, instant or daily,
net or gross; statuses, commlogs and QuickBooks deposits each behind their own switch.

The marts are a real DuckDB file with the writeback marts' columns (as dbt builds them); the
planner reads them exactly as it reads the analysts' copy."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from chairside import paths
from chairside.config import Organisation, load_organisation
from writeback.outbox import Outbox
from writeback.plan import daily_due, plan

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York


def organisation(**writeback) -> Organisation:
    """The demo organisation with these writeback settings, loaded as a config file is."""
    raw = yaml.safe_load(paths.config_path().read_text())
    raw["writeback"] = writeback
    raw["sync"]["schedule_timezone"] = "America/New_York"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "org.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_organisation(path)


@pytest.fixture
def marts(tmp_path):
    path = tmp_path / "analyst.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            """
            create table marts.wb_payments as select * from (values
              ('k1', 'ch_portal', 'processor', 'lakeside', 'patient_portal',
               timestamptz '2026-12-01 14:00:00+00', 100.00, 3.20, 96.80, 0.00,
               'od_lakeside', 'opendental', '0', '501', 'p501', 'ready'),
              ('k2', 'ch_plan', 'processor', 'lakeside', 'payment_plan',
               timestamptz '2026-12-01 14:05:00+00', 50.00, 1.75, 48.25, 0.00,
               'od_lakeside', 'opendental', '0', '502', 'p502', 'ready'),
              ('k3', 'ch_member', 'processor', 'lakeside', 'membership',
               timestamptz '2026-12-01 14:10:00+00', 30.00, 1.17, 28.83, 0.00,
               'od_lakeside', 'opendental', '0', '503', 'p503', 'ready'),
              ('k4', 'ch_done', 'processor', 'lakeside', 'patient_portal',
               timestamptz '2026-11-30 14:10:00+00', 30.00, 1.17, 28.83, 0.00,
               'od_lakeside', 'opendental', '0', '504', 'p504', 'written')
            ) as t(charge_key, source_charge_id, processor_connection_id, org_location_id,
                   payment_type, created_at, gross_amount, fee_amount, net_amount,
                   refunded_amount, pms_connection_id, pms_vendor, pms_location_ref,
                   source_patient_id, patient_key, writeback_state)
            """
        )
        con.execute(
            """
            create table marts.wb_text_replies as select * from (values
              ('m1', 'SM1', 'phones', 'lakeside', timestamptz '2026-12-01 13:00:00+00',
               'confirm', 'exact', 1, 'a1', 'opendental', 'od_lakeside', '9001', '501',
               timestamptz '2026-12-03 14:00:00+00', 'scheduled', 'ready'),
              ('m2', 'SM2', 'phones', 'lakeside', timestamptz '2026-12-01 13:30:00+00',
               'cancel', 'household', 1, 'a2', 'opendental', 'od_lakeside', '9002', '502',
               timestamptz '2026-12-04 14:00:00+00', 'scheduled', 'ready')
            ) as t(message_key, source_message_id, phone_connection_id, org_location_id,
                   received_at, intent, sender_match_outcome, n_open_appointments, appointment_key,
                   pms_vendor, pms_connection_id, source_appointment_id, source_patient_id,
                   appointment_start_at, appointment_status, writeback_state)
            """
        )
        con.execute(
            """
            create table marts.wb_call_summaries as select * from (values
              ('c1', 'CA1', 'lakeside', 'Lakeside Smiles', timestamptz '2026-12-01 12:00:00+00',
               252, 'exact', 'person1', 'od_lakeside', 'opendental', '501', 'p501', 'ready')
            ) as t(call_key, source_call_id, org_location_id, location_name, started_at,
                   talk_seconds, caller_match_outcome, person_id, pms_connection_id,
                   pms_vendor, source_patient_id, patient_key, writeback_state)
            """
        )
        con.execute(
            """
            create table marts.wb_payout_deposit_lines as select * from (values
              ('pk1', 'po_early', 'processor', date '2026-11-20', 'usd', 95.00, 'gross',
               'patient_portal', 'lakeside', 100.00, 1),
              ('pk1', 'po_early', 'processor', date '2026-11-20', 'usd', 95.00, 'fee',
               null, null, -5.00, 1),
              ('pk2', 'po_late', 'processor', date '2026-11-28', 'usd', 140.50, 'gross',
               'patient_portal', 'lakeside', 100.00, 2),
              ('pk2', 'po_late', 'processor', date '2026-11-28', 'usd', 140.50, 'gross',
               'membership', 'riverside_family', 50.00, 1),
              ('pk2', 'po_late', 'processor', date '2026-11-28', 'usd', 140.50, 'fee',
               null, null, -9.50, 3)
            ) as t(payout_key, source_payout_id, processor_connection_id, arrival_date,
                   currency, payout_amount, line_kind, payment_type, org_location_id, amount,
                   n_transactions)
            """
        )
    return path


def by_ref(writes):
    return {w.source_ref: w for w in writes}


def test_nothing_is_written_until_the_practice_turns_it_on(marts):
    assert plan(marts, organisation(), NOW) == []


def test_a_payment_type_switched_off_is_not_written(marts):
    org = organisation(payments={"patient_portal": {"enabled": True}, "membership": {}})
    assert set(by_ref(plan(marts, org, NOW))) == {"ch_portal"}  # written one not again


def test_net_or_gross_is_what_the_ledger_gets(marts):
    org = organisation(
        payments={
            "patient_portal": {"enabled": True, "amount": "net"},
            "payment_plan": {"enabled": True, "amount": "gross"},
        }
    )
    writes = by_ref(plan(marts, org, NOW))
    assert Decimal(writes["ch_portal"].payload["amount"]) == Decimal("96.80")
    assert writes["ch_portal"].payload["amount_basis"] == "net"
    assert Decimal(writes["ch_plan"].payload["amount"]) == Decimal("50.00")
    assert writes["ch_plan"].payload["pms_pay_type"] == "Credit Card"


def test_instant_writes_are_due_now_and_daily_ones_at_the_daily_run(marts, tmp_path):
    org = organisation(
        payments={
            "patient_portal": {"enabled": True, "timing": "instant"},
            "payment_plan": {"enabled": True, "timing": "daily"},
        },
        daily_at="18:30",
    )
    writes = by_ref(plan(marts, org, NOW))
    assert writes["ch_portal"].due_at == NOW
    daily = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 18:30 New York (EST)
    assert writes["ch_plan"].due_at == daily == daily_due(org, NOW)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.plan(writes.values())
    assert [r.source_ref for r in outbox.due("od_lakeside", NOW)] == ["ch_portal"]
    assert {r.source_ref for r in outbox.due("od_lakeside", daily)} == {"ch_portal", "ch_plan"}


def test_statuses_and_commlogs_each_have_their_own_switch(marts):
    only_statuses = by_ref(plan(marts, organisation(statuses={"enabled": True}), NOW))
    assert {w.kind for w in only_statuses.values()} == {
        "appointment_confirm",
        "appointment_cancel",
    }
    assert only_statuses["SM1"].payload["appointment_id"] == "9001"
    only_commlogs = plan(marts, organisation(commlogs={"enabled": True}), NOW)
    assert [(w.kind, w.source_ref) for w in only_commlogs] == [("commlog", "CA1")]
    note = only_commlogs[0].payload["note"]
    assert "Lakeside Smiles" in note and "4 min 12 s" in note


def test_quickbooks_books_payouts_from_the_cut_over_day_as_balanced_deposits(marts):
    org = organisation(
        quickbooks={
            "enabled": True,
            "connection": "books",
            "payouts_from": "2026-11-25",
            "income_accounts": {"membership": "Membership Income"},
            "classes": {"lakeside": "Lakeside"},
        }
    )
    deposits = by_ref(plan(marts, org, NOW))
    assert set(deposits) == {"po_late"}  # po_early was booked by hand before the cut-over
    deposit = deposits["po_late"].payload
    assert deposit["txn_date"] == date(2026, 11, 28).isoformat()
    assert sum(Decimal(line["amount"]) for line in deposit["lines"]) == Decimal(deposit["net"])
    accounts = {(line["account"], line["class_name"]) for line in deposit["lines"]}
    assert accounts == {
        ("Patient Revenue", "Lakeside"),
        ("Membership Income", None),
        ("Merchant Fees", None),
    }
    assert deposits["po_late"].key in deposit["private_note"]
    assert len(deposit["doc_number"]) <= 21


def test_quickbooks_settings_are_checked_with_errors_naming_the_field():
    with pytest.raises(ValueError) as error:
        organisation(quickbooks={"enabled": True, "connection": "processor"})
    text = str(error.value)
    assert "writeback.quickbooks.connection: 'processor' is not a quickbooks connection" in text
    assert "writeback.quickbooks.payouts_from" in text
    with pytest.raises(ValueError, match="unknown payment type"):
        organisation(payments={"cash": {"enabled": True}})
