"""Writeback to the practice-management systems, end to end: a real outbox file, the real
deliver loop, the Open Dental and NexHealth destinations, and the simulators over loopback HTTP.

Every write must land exactly once on the right record, be read back by the next sync, survive a
lost response (the write committed, the answer lost) by being found instead of sent again, and
fail with a reason naming the vendor and the problem when the vendor refuses it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from chairside.config import Organisation
from extract.nexhealth.connector import sync_entity as nexhealth_sync
from extract.opendental.connector import sync_entity as opendental_sync
from simulators.faults import FaultRule
from simulators.nexhealth import data
from simulators.nexhealth.wire import CONFIRMED_DEF
from tests.conftest import OpenDental, organisation_for
from tests.test_nexhealth_simulator import (
    API_KEY,
    SUBDOMAIN,
    NexHealth,
    nexhealth_world,
    serve_nexhealth,
)
from writeback import nexhealth as nexhealth_writeback
from writeback import opendental as opendental_writeback
from writeback.deliver import deliver
from writeback.outbox import Outbox, Write
from writeback.writes import (
    AppointmentCancel,
    AppointmentConfirm,
    Commlog,
    PmsPayment,
)

OD = "od_riverside"
NX = "nx_demo"
NX_KEY_ENV = "NX_WRITEBACK_API_KEY"
DUE = datetime(2020, 1, 1, tzinfo=UTC)  # every planned write is due
# What a payload may carry: ids, amounts, dates, enums and our own short notes (no PHI).
PAYLOAD_FIELDS = {
    "pms_payment": set(PmsPayment.model_fields),
    "appointment_confirm": set(AppointmentConfirm.model_fields),
    "appointment_cancel": set(AppointmentCancel.model_fields),
    "commlog": set(Commlog.model_fields),
}


# --- payloads ------------------------------------------------------------------------------


def payment(patient_id: int, charge: str, *, amount: str = "42.50", location_ref=None,
            pms_pay_type: str | None = "Credit Card") -> dict:  # fmt: skip
    return PmsPayment(
        patient_id=str(patient_id),
        location_ref=None if location_ref is None else str(location_ref),
        amount=Decimal(amount),
        gross=Decimal(amount) + Decimal("1.53"),
        fee=Decimal("1.53"),
        amount_basis="net",
        paid_on=date(2026, 10, 31),
        payment_type="card_terminal",
        pms_pay_type=pms_pay_type,
        charge_id=charge,
        note=f"Card payment {charge}",
    ).model_dump(mode="json")


def confirm(appointment_id: int, patient_id: int, message: str) -> dict:
    return AppointmentConfirm(
        appointment_id=str(appointment_id),
        patient_id=str(patient_id),
        message_ref=message,
        received_at=datetime(2026, 10, 31, 14, 5, tzinfo=UTC),
    ).model_dump(mode="json")


def cancel(appointment_id: int, patient_id: int, message: str) -> dict:
    return AppointmentCancel(
        appointment_id=str(appointment_id),
        patient_id=str(patient_id),
        message_ref=message,
        received_at=datetime(2026, 10, 31, 14, 7, tzinfo=UTC),
    ).model_dump(mode="json")


def commlog(patient_id: int, call: str) -> dict:
    return Commlog(
        patient_id=str(patient_id),
        at=datetime(2026, 10, 31, 18, 30, tzinfo=UTC),
        note="Inbound call, answered, 3m12s, main line.",
        call_ref=call,
    ).model_dump(mode="json")


def plan(outbox: Outbox, target: str, *writes: tuple[str, str, dict]) -> dict[str, str]:
    """Plan (kind, source_ref, payload) writes; returns source_ref -> outbox key."""
    planned = [Write(kind, target, ref, body, DUE) for kind, ref, body in writes]
    outbox.plan(planned)
    return {w.source_ref: w.key for w in planned}


# --- simulators and destinations -----------------------------------------------------------


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "writeback" / "outbox.sqlite")


def od_destination(od: OpenDental) -> opendental_writeback.OpenDentalDestination:
    return opendental_writeback.open_destination(organisation_for(od).connection(OD))


def written(url: str) -> dict:
    return httpx.get(f"{url}/_sim/written").json()


def effects(url: str, kind: str, **ids) -> list[dict]:
    return [
        w
        for w in written(url)["writes"]
        if w["kind"] == kind and all(w.get(k) == v for k, v in ids.items())
    ]


def requests(stats, path: str, status: int) -> int:
    return sum(r["count"] for r in stats.snapshot() if r["path"] == path and r["status"] == status)


@pytest.fixture
def nx(monkeypatch: pytest.MonkeyPatch) -> Iterator[NexHealth]:
    monkeypatch.setenv(NX_KEY_ENV, API_KEY)
    with serve_nexhealth(nexhealth_world()) as served:
        yield served


def nx_organisation(nx: NexHealth) -> Organisation:
    connection = {
        "id": NX,
        "vendor": "nexhealth",
        "base_url": nx.url,
        "api_key_env": NX_KEY_ENV,
        "subdomain": SUBDOMAIN,
        "timezone": "America/New_York",
        "requests_per_second": 500.0,
        "read_timeout_s": 5.0,
    }
    return Organisation.model_validate({"id": "g", "name": "G", "connections": [connection]})


def nx_destination(nx: NexHealth) -> nexhealth_writeback.NexHealthDestination:
    return nexhealth_writeback.open_destination(nx_organisation(nx).connection(NX))


def landed_latest(landing_root: Path, vendor: str, entity: str) -> dict[str, dict]:
    """The latest landed version of each record of a vendor entity, by record key."""
    glob = str(landing_root / vendor / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.sql(
            f"""
            select _record_key, _record from read_parquet('{glob}', union_by_name=true)
            qualify row_number() over (partition by _connection_id, _record_key
                order by _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc) = 1
            """
        ).fetchall()
    return {key: json.loads(record) for key, record in rows}


# --- picking records from the world --------------------------------------------------------


def patients(world, office: str, n: int) -> list[int]:
    frame = world.table("patients", office).filter(pl.col("PatStatus") == "Patient")
    return frame.sort("PatNum")["PatNum"].head(n).to_list()


def scheduled(world, office: str, n: int) -> list[tuple[int, int]]:
    """(AptNum, PatNum) of upcoming Scheduled appointments not confirmed yet."""
    confirmed = world.table("definitions", office).filter(
        (pl.col("Category") == 2) & (pl.col("ItemName") == CONFIRMED_DEF)
    )["DefNum"][0]
    now = world.office_now(office)
    frame = world.table("appointments", office).filter(
        (pl.col("AptStatus") == "Scheduled")
        & (pl.col("AptDateTime") > now)
        & (pl.col("Confirmed") != confirmed)
    )
    return [tuple(r) for r in frame.sort("AptNum").select("AptNum", "PatNum").head(n).rows()]


def completed(world, office: str) -> tuple[int, int]:
    frame = world.table("appointments", office).filter(pl.col("AptStatus") == "Complete")
    return tuple(frame.sort("AptNum").select("AptNum", "PatNum").row(0))


def world_row(world, table: str, office: str, key: str, value: int) -> dict:
    return world.table(table, office).filter(pl.col(key) == value).row(0, named=True)


def confirmed_defnum(world, office: str) -> int:
    return world.table("definitions", office).filter(
        (pl.col("Category") == 2) & (pl.col("ItemName") == CONFIRMED_DEF)
    )["DefNum"][0]


# --- Open Dental ---------------------------------------------------------------------------


def test_opendental_writes_each_kind_once_and_the_next_sync_reads_them(
    opendental, outbox, landing_root
):
    world = opendental.world
    connection = organisation_for(opendental).connection(OD)
    entities = ("payments", "paysplits", "appointments", "commlogs")
    for entity in entities:  # the sync has run before the writes
        opendental_sync(connection, entity, landing_root=landing_root)
    pat_a, pat_b = patients(world, OD, 2)
    (apt_c, pat_c), (apt_x, pat_x) = scheduled(world, OD, 2)
    keys = plan(
        outbox, OD,
        ("pms_payment", "ch_od_1", payment(pat_a, "ch_od_1", location_ref=1)),
        ("appointment_confirm", "SM_c1", confirm(apt_c, pat_c, "SM_c1")),
        ("appointment_cancel", "SM_x1", cancel(apt_x, pat_x, "SM_x1")),
        ("commlog", "CA_1", commlog(pat_b, "CA_1")),
    )  # fmt: skip

    with od_destination(opendental) as destination:
        report = deliver(outbox, destination)

    assert (report.sent, report.found, report.failed, report.unknown) == (4, 0, [], [])
    rows = {r.source_ref: r for r in outbox.rows()}
    assert {r.state for r in rows.values()} == {"done"}
    # Exactly one record per row, on the right patient / appointment.
    markers = written(opendental.url)["markers"]
    assert markers == {keys["ch_od_1"]: 1, keys["CA_1"]: 1}
    pay_num = int(rows["ch_od_1"].remote_id)
    paid = world_row(world, "payments", OD, "PayNum", pay_num)
    assert (paid["PatNum"], paid["PayAmt"], paid["ClinicNum"]) == (pat_a, 42.5, 1)
    assert paid["PayType"] == 71  # "Credit Card", resolved from the definitions
    assert paid["PayNote"] == f"Card payment ch_od_1 [chairside {keys['ch_od_1']} ch_od_1]"
    assert [e["AptNum"] for e in effects(opendental.url, "appointment_confirm")] == [apt_c]
    assert [e["AptNum"] for e in effects(opendental.url, "appointment_break")] == [apt_x]
    assert rows["SM_c1"].remote_id == str(apt_c) and rows["SM_x1"].remote_id == str(apt_x)
    logged = world_row(world, "commlogs", OD, "CommlogNum", int(rows["CA_1"].remote_id))
    assert logged["PatNum"] == pat_b
    # 18:30 UTC is 14:30 in New York (EDT on 31 October): Open Dental keeps office time.
    assert logged["CommDateTime"] == datetime(2026, 10, 31, 14, 30)
    assert (logged["Mode_"], logged["SentOrReceived"]) == ("Phone", "Received")

    # The next incremental sync reads every effect back.
    for entity in entities:
        opendental_sync(connection, entity, landing_root=landing_root)
    landed_payment = landed_latest(landing_root, "opendental", "payments")[str(pay_num)]
    assert keys["ch_od_1"] in landed_payment["PayNote"]
    splits = landed_latest(landing_root, "opendental", "paysplits").values()
    assert [s["SplitAmt"] for s in splits if s["PayNum"] == pay_num] == [42.5]
    appointments = landed_latest(landing_root, "opendental", "appointments")
    assert appointments[str(apt_c)]["confirmed"] == "Appointment Confirmed"
    assert appointments[str(apt_x)]["AptStatus"] == "Broken"
    commlogs = landed_latest(landing_root, "opendental", "commlogs")
    assert keys["CA_1"] in commlogs[rows["CA_1"].remote_id]["Note"]


def test_opendental_lost_responses_are_found_not_written_twice(opendental, outbox):
    world = opendental.world
    pat_a, pat_b = patients(world, OD, 2)
    (apt_c, pat_c), (apt_x, pat_x) = scheduled(world, OD, 2)
    keys = plan(
        outbox, OD,
        ("pms_payment", "ch_lost", payment(pat_a, "ch_lost")),
        ("appointment_confirm", "SM_c2", confirm(apt_c, pat_c, "SM_c2")),
        ("appointment_cancel", "SM_x2", cancel(apt_x, pat_x, "SM_x2")),
        ("commlog", "CA_2", commlog(pat_b, "CA_2")),
    )  # fmt: skip
    # Each write commits, then its answer is lost (504); the reads stay untouched.
    opendental.faults.add(
        FaultRule(path="^/payments$", kind="lost_response", method="POST"),
        FaultRule(path=r"^/appointments/\d+/Confirm$", kind="lost_response", method="PUT"),
        FaultRule(path=r"^/appointments/\d+/Break$", kind="lost_response", method="PUT"),
        FaultRule(path="^/commlogs$", kind="lost_response", method="POST"),
    )

    with od_destination(opendental) as destination:
        first = deliver(outbox, destination)
        assert (first.sent, len(first.unknown)) == (0, 4)
        assert {r.state for r in outbox.rows()} == {"pending"}
        second = deliver(outbox, destination)

    assert (second.sent, second.found, second.failed) == (0, 4, [])
    rows = {r.source_ref: r for r in outbox.rows()}
    assert {r.state for r in rows.values()} == {"done"}
    assert written(opendental.url)["markers"] == {keys["ch_lost"]: 1, keys["CA_2"]: 1}
    assert len(effects(opendental.url, "appointment_confirm", AptNum=apt_c)) == 1
    assert len(effects(opendental.url, "appointment_break", AptNum=apt_x)) == 1
    # The remote ids are the records the lost answers would have named.
    [paid] = effects(opendental.url, "payment")
    [logged] = effects(opendental.url, "commlog")
    assert rows["ch_lost"].remote_id == str(paid["PayNum"]) and paid["PatNum"] == pat_a
    assert rows["CA_2"].remote_id == str(logged["CommlogNum"]) and logged["PatNum"] == pat_b
    assert (rows["SM_c2"].remote_id, rows["SM_x2"].remote_id) == (str(apt_c), str(apt_x))
    assert [e["event"] for e in outbox.events(keys["ch_lost"])] == [
        "planned", "claimed", "unknown", "claimed", "found",
    ]  # fmt: skip
    # Nothing was sent a second time.
    stats = opendental.stats
    assert requests(stats, "/payments", 504) == 1 and requests(stats, "/payments", 201) == 0
    assert requests(stats, f"/appointments/{apt_x}/Break", 400) == 0


def test_opendental_refusals_fail_the_row_with_the_reason_and_spare_the_others(opendental, outbox):
    world = opendental.world
    pat_a, pat_b = patients(world, OD, 2)
    [(apt_c, pat_c)] = scheduled(world, OD, 1)
    apt_done, pat_done = completed(world, OD)
    keys = plan(
        outbox, OD,
        ("pms_payment", "ch_nobody", payment(999_999, "ch_nobody")),
        ("pms_payment", "ch_badtype", payment(pat_a, "ch_badtype", pms_pay_type="Bitcoin")),
        ("appointment_cancel", "SM_done", cancel(apt_done, pat_done, "SM_done")),
        ("pms_payment", "ch_good", payment(pat_b, "ch_good")),
        ("appointment_confirm", "SM_c3", confirm(apt_c, pat_c, "SM_c3")),
    )  # fmt: skip

    with od_destination(opendental) as destination:
        report = deliver(outbox, destination)
        rows = {r.source_ref: r for r in outbox.rows()}
        assert rows["ch_nobody"].last_error == "Open Dental 400: PatNum not found."
        assert rows["SM_done"].last_error == (
            "Open Dental 400: Only a Scheduled appointment can be broken."
        )
        reason = rows["ch_badtype"].last_error
        assert "Open Dental office od_riverside has no payment type named 'Bitcoin'" in reason
        assert "writeback.payments.card_terminal.pms_pay_type" in reason
        assert "Credit Card" in reason  # what the office does have
        assert {k for k, r in rows.items() if r.state == "failed"} == {
            "ch_nobody", "ch_badtype", "SM_done",
        }  # fmt: skip
        assert (rows["ch_good"].state, rows["SM_c3"].state) == ("done", "done")
        assert (report.sent, len(report.failed)) == (2, 3)
        # The unknown payment type was refused before any request: two POSTs, not three.
        assert requests(opendental.stats, "/payments", 400) == 1
        assert requests(opendental.stats, "/payments", 201) == 1
        assert world_row(world, "appointments", OD, "AptNum", apt_done)["AptStatus"] == "Complete"

        # Retried by ops, the break is looked up first: a Complete appointment is not a done
        # break, so it is sent again and refused again.
        outbox.retry([keys["SM_done"]], actor="ops", reason="checked")
        again = deliver(outbox, destination)
    assert (again.found, len(again.failed)) == (0, 1)
    assert outbox.get(keys["SM_done"]).state == "failed"
    assert requests(opendental.stats, f"/appointments/{apt_done}/Break", 400) == 2


def test_opendental_break_of_an_appointment_broken_meanwhile_is_done(opendental, outbox):
    world = opendental.world
    [(apt_x, pat_x)] = scheduled(world, OD, 1)
    with od_destination(opendental) as destination:
        # The office breaks it first (as a missed visit), then the patient's cancellation comes.
        destination.client.write_json(
            "PUT", f"/appointments/{apt_x}/Break", json={"sendToUnscheduledList": "true"}
        )
        keys = plan(outbox, OD, ("appointment_cancel", "SM_x4", cancel(apt_x, pat_x, "SM_x4")))
        report = deliver(outbox, destination)
    assert (report.sent, report.failed) == (1, [])
    assert outbox.get(keys["SM_x4"]).remote_id == str(apt_x)
    assert len(effects(opendental.url, "appointment_break", AptNum=apt_x)) == 1


def test_opendental_throttled_write_is_sent_again_and_lands_once(opendental, outbox):
    [pat_a] = patients(opendental.world, OD, 1)
    keys = plan(outbox, OD, ("pms_payment", "ch_429", payment(pat_a, "ch_429")))
    opendental.faults.add(
        FaultRule(path="^/payments$", kind="status", code=429, retry_after=0, method="POST")
    )
    with od_destination(opendental) as destination:
        report = deliver(outbox, destination)
    assert (report.sent, report.failed, report.unknown) == (1, [], [])
    assert written(opendental.url)["markers"] == {keys["ch_429"]: 1}
    assert requests(opendental.stats, "/payments", 429) == 1
    assert requests(opendental.stats, "/payments", 201) == 1
    assert outbox.get(keys["ch_429"]).attempts == 1  # one delivery: the client retried


# --- NexHealth -----------------------------------------------------------------------------


def nx_location(nx: NexHealth) -> data.Location:
    return nx.simulator.locations[0]


def test_nexhealth_writes_each_kind_once_and_the_next_sync_reads_them(nx, outbox, landing_root):
    world, location = nx.world, nx_location(nx)
    office = location.office
    connection = nx_organisation(nx).connection(NX)
    for entity in ("payments", "appointments"):  # the sync has run before the writes
        nexhealth_sync(connection, entity, landing_root=landing_root)
    [pat_a] = patients(world, office, 1)
    (apt_c, pat_c), (apt_x, pat_x) = scheduled(world, office, 2)
    patient_id = data.nex_id(location.id, pat_a)
    confirm_id, cancel_id = data.nex_id(location.id, apt_c), data.nex_id(location.id, apt_x)
    keys = plan(
        outbox, NX,
        ("pms_payment", "ch_nx_1", payment(patient_id, "ch_nx_1", location_ref=location.id)),
        ("appointment_confirm", "SM_nc1", confirm(confirm_id, pat_c, "SM_nc1")),
        ("appointment_cancel", "SM_nx1", cancel(cancel_id, pat_x, "SM_nx1")),
    )  # fmt: skip

    with nx_destination(nx) as destination:
        report = deliver(outbox, destination)

    assert (report.sent, report.failed, report.unknown) == (3, [], [])
    rows = {r.source_ref: r for r in outbox.rows()}
    assert written(nx.url)["markers"] == {keys["ch_nx_1"]: 1}
    [paid] = effects(nx.url, "payment")
    assert rows["ch_nx_1"].remote_id == str(paid["id"])
    assert (paid["patient_id"], paid["transaction_id"]) == (patient_id, "ch_nx_1")
    pay_num = data.native_key(paid["id"])[1]
    row = world_row(world, "payments", office, "PayNum", pay_num)
    assert (row["PatNum"], row["PayAmt"], row["PayType"]) == (pat_a, 42.5, 71)
    assert [e["id"] for e in effects(nx.url, "appointment_confirm")] == [confirm_id]
    assert [e["id"] for e in effects(nx.url, "appointment_cancel")] == [cancel_id]
    assert (rows["SM_nc1"].remote_id, rows["SM_nx1"].remote_id) == (
        str(confirm_id), str(cancel_id),
    )  # fmt: skip

    for entity in ("payments", "appointments"):
        nexhealth_sync(connection, entity, landing_root=landing_root)
    landed = landed_latest(landing_root, "nexhealth", "payments")[str(paid["id"])]
    assert landed["payment_amount"] == {"amount": "-42.50", "currency": "USD"}
    assert landed["transaction_id"] == "ch_nx_1" and keys["ch_nx_1"] in landed["description"]
    appointments = landed_latest(landing_root, "nexhealth", "appointments")
    assert appointments[str(confirm_id)]["confirmed"] is True
    assert appointments[str(cancel_id)]["cancelled"] is True


def test_nexhealth_lost_responses_are_found_not_written_twice(nx, outbox):
    world, location = nx.world, nx_location(nx)
    [pat_a] = patients(world, location.office, 1)
    (apt_c, pat_c), (apt_x, pat_x) = scheduled(world, location.office, 2)
    patient_id = data.nex_id(location.id, pat_a)
    confirm_id, cancel_id = data.nex_id(location.id, apt_c), data.nex_id(location.id, apt_x)
    keys = plan(
        outbox, NX,
        ("pms_payment", "ch_nx_lost", payment(patient_id, "ch_nx_lost",
                                              location_ref=location.id)),
        ("appointment_confirm", "SM_nc2", confirm(confirm_id, pat_c, "SM_nc2")),
        ("appointment_cancel", "SM_nx2", cancel(cancel_id, pat_x, "SM_nx2")),
    )  # fmt: skip
    nx.faults.add(
        FaultRule(path="^/payments$", kind="lost_response", method="POST"),
        FaultRule(path=r"^/appointments/\d+$", kind="lost_response", method="PATCH", times=2),
    )

    with nx_destination(nx) as destination:
        first = deliver(outbox, destination)
        assert (first.sent, len(first.unknown)) == (0, 3)
        second = deliver(outbox, destination)

    assert (second.sent, second.found, second.failed) == (0, 3, [])
    rows = {r.source_ref: r for r in outbox.rows()}
    assert {r.state for r in rows.values()} == {"done"}
    assert written(nx.url)["markers"] == {keys["ch_nx_lost"]: 1}
    [paid] = effects(nx.url, "payment")
    assert rows["ch_nx_lost"].remote_id == str(paid["id"]) and paid["patient_id"] == patient_id
    assert len(effects(nx.url, "appointment_confirm", id=confirm_id)) == 1
    assert len(effects(nx.url, "appointment_cancel", id=cancel_id)) == 1
    assert (rows["SM_nc2"].remote_id, rows["SM_nx2"].remote_id) == (
        str(confirm_id), str(cancel_id),
    )  # fmt: skip
    assert nx.requests("/payments", 504) == 1 and nx.requests("/payments", 201) == 0


def test_nexhealth_refusals_fail_the_row_with_the_reason_and_spare_the_others(nx, outbox):
    world, location = nx.world, nx_location(nx)
    office = location.office
    pat_a, pat_b = patients(world, office, 2)
    apt_done, pat_done = completed(world, office)
    done_id = data.nex_id(location.id, apt_done)
    unknown_patient = data.nex_id(location.id, 999_999)
    keys = plan(
        outbox, NX,
        ("pms_payment", "ch_nx_nobody", payment(unknown_patient, "ch_nx_nobody",
                                                location_ref=location.id)),
        ("pms_payment", "ch_nx_badtype", payment(data.nex_id(location.id, pat_a),
                                                 "ch_nx_badtype", location_ref=location.id,
                                                 pms_pay_type="Bitcoin")),
        ("appointment_cancel", "SM_nx_done", cancel(done_id, pat_done, "SM_nx_done")),
        ("commlog", "CA_nx", commlog(data.nex_id(location.id, pat_b), "CA_nx")),
        ("pms_payment", "ch_nx_good", payment(data.nex_id(location.id, pat_b), "ch_nx_good",
                                              location_ref=location.id)),
    )  # fmt: skip

    with nx_destination(nx) as destination:
        report = deliver(outbox, destination)

    rows = {r.source_ref: r for r in outbox.rows()}
    assert rows["ch_nx_nobody"].last_error == "NexHealth 404: Patient not found"
    assert rows["SM_nx_done"].last_error == (
        "NexHealth 400: Only a scheduled appointment can be cancelled"
    )
    reason = rows["ch_nx_badtype"].last_error
    assert f"NexHealth location {location.id} has no payment type named 'Bitcoin'" in reason
    assert "writeback.payments.card_terminal.pms_pay_type" in reason
    assert rows["CA_nx"].last_error == "NexHealth has no commlog endpoint; enter by hand"
    assert rows["ch_nx_good"].state == "done"
    assert {k for k, r in rows.items() if r.state == "failed"} == set(keys) - {"ch_nx_good"}
    assert (report.sent, len(report.failed)) == (1, 4)
    # Only the payment with an unknown patient and the good one were posted.
    assert nx.requests("/payments", 404) == 1 and nx.requests("/payments", 201) == 1
    assert world_row(world, "appointments", office, "AptNum", apt_done)["AptStatus"] == "Complete"
    assert not any("commlog" in r["path"] for r in nx.stats.snapshot())


def test_nexhealth_throttled_write_is_sent_again_and_lands_once(nx, outbox):
    location = nx_location(nx)
    [pat_a] = patients(nx.world, location.office, 1)
    patient_id = data.nex_id(location.id, pat_a)
    keys = plan(
        outbox, NX,
        ("pms_payment", "ch_nx_429", payment(patient_id, "ch_nx_429", location_ref=location.id)),
    )  # fmt: skip
    nx.faults.add(
        FaultRule(path="^/payments$", kind="status", code=429, retry_after=0, method="POST")
    )
    with nx_destination(nx) as destination:
        report = deliver(outbox, destination)
    assert (report.sent, report.failed, report.unknown) == (1, [], [])
    assert written(nx.url)["markers"] == {keys["ch_nx_429"]: 1}
    assert nx.requests("/payments", 429) == 1 and nx.requests("/payments", 201) == 1


def test_refused_credentials_fail_the_rows_for_ops_to_fix(opendental, nx, outbox, monkeypatch):
    [pat_a] = patients(opendental.world, OD, 1)
    [(apt_x, pat_x)] = scheduled(opendental.world, OD, 1)
    location = nx_location(nx)
    [(apt_c, pat_c)] = scheduled(nx.world, location.office, 1)
    plan(
        outbox, OD,
        ("pms_payment", "ch_key1", payment(pat_a, "ch_key1")),  # reads definitions first
        ("appointment_cancel", "SM_key1", cancel(apt_x, pat_x, "SM_key1")),  # writes at once
    )  # fmt: skip
    plan(
        outbox, NX,
        ("appointment_confirm", "SM_key2",
         confirm(data.nex_id(location.id, apt_c), pat_c, "SM_key2")),
    )  # fmt: skip
    monkeypatch.setenv(f"OD_{OD.upper()}_CUSTOMER_KEY", "cust-revoked")
    monkeypatch.setenv(NX_KEY_ENV, "revoked-nexhealth-key")

    with od_destination(opendental) as od_dest, nx_destination(nx) as nx_dest:
        deliver(outbox, od_dest)
        deliver(outbox, nx_dest)

    rows = {r.source_ref: r for r in outbox.rows()}
    assert {r.state for r in rows.values()} == {"failed"}
    assert rows["ch_key1"].last_error.startswith(
        "Open Dental 401: the API key was refused or lacks the permission for /definitions"
    )
    assert rows["SM_key1"].last_error.startswith(
        f"Open Dental 401: the API key was refused or lacks the permission for "
        f"PUT /appointments/{apt_x}/Break"
    )
    assert rows["SM_key2"].last_error.startswith("NexHealth 401: the API key was refused")
    assert not written(opendental.url)["writes"] and not written(nx.url)["writes"]
    assert not [r for r in rows.values() if "revoked" in r.last_error]


# --- PHI -----------------------------------------------------------------------------------


def phi_sentinels(world) -> set[str]:
    patients = world.table("patients")
    return {
        value
        for column in ("LName", "FName", "Email", "WirelessPhone", "HmPhone", "WkPhone")
        for value in patients[column].to_list()
        if value and len(value) > 3
    } | {str(b) for b in patients["Birthdate"].to_list() if b is not None}


def outbox_text(outbox: Outbox) -> str:
    with sqlite3.connect(outbox.path) as con:
        rows = con.execute("select * from writes").fetchall()
        rows += con.execute("select * from events").fetchall()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_outbox_and_logs_carry_no_patient_data(opendental, nx, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    od_world = opendental.world
    pat_a, pat_b = patients(od_world, OD, 2)
    [(apt_c, pat_c)] = scheduled(od_world, OD, 1)
    apt_done, pat_done = completed(od_world, OD)
    plan(
        outbox, OD,
        ("pms_payment", "ch_p1", payment(pat_a, "ch_p1")),
        ("pms_payment", "ch_p2", payment(999_999, "ch_p2")),
        ("pms_payment", "ch_p3", payment(pat_a, "ch_p3", pms_pay_type="Bitcoin")),
        ("appointment_confirm", "SM_p1", confirm(apt_c, pat_c, "SM_p1")),
        ("appointment_cancel", "SM_p2", cancel(apt_done, pat_done, "SM_p2")),
        ("commlog", "CA_p1", commlog(pat_b, "CA_p1")),
    )  # fmt: skip
    location = nx_location(nx)
    [nx_pat] = patients(nx.world, location.office, 1)
    plan(
        outbox, NX,
        ("pms_payment", "ch_p4", payment(data.nex_id(location.id, nx_pat), "ch_p4",
                                         location_ref=location.id)),
        ("commlog", "CA_p2", commlog(data.nex_id(location.id, nx_pat), "CA_p2")),
    )  # fmt: skip
    opendental.faults.add(FaultRule(path="^/commlogs$", kind="lost_response", method="POST"))

    with od_destination(opendental) as od_dest, nx_destination(nx) as nx_dest:
        for destination in (od_dest, nx_dest, od_dest):  # the last run settles the lost one
            deliver(outbox, destination)

    states = {r.source_ref: r.state for r in outbox.rows()}
    assert states["CA_p1"] == "done" and states["ch_p2"] == "failed"  # it did speak
    for row in outbox.rows():
        assert set(row.payload) <= PAYLOAD_FIELDS[row.kind]
    sentinels = phi_sentinels(od_world) | phi_sentinels(nx.world)
    stored = outbox_text(outbox)
    assert not [s for s in sentinels if s in stored]
    assert "writeback od_riverside" in caplog.text and "refused" in caplog.text
    assert not [s for s in sentinels if s in caplog.text]
    assert API_KEY not in caplog.text
