"""The world's events Chairside writes back, served by the real simulators over loopback HTTP.

- Online payments (Stripe): patients of the Open Dental and NexHealth offices pay through
  links the practice texts them. The processor has the charge (``origin: "online"``, the
  patient's PMS id in ``patient_ref``, no ``pms_payment_ref``), the PMS does not until Chairside
  posts it; the charges are priced and paid out like any other.
- Appointment reminders (Twilio): the practice texts patients about visits two days ahead and a
  share reply to confirm, to cancel, or with something else; the truth names the appointment.

Both are off by default and drawn by their own stable hashes: switched on, they add records and
leave every record the world already had byte for byte as it was.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import orjson
import polars as pl
import pytest

from simulators.carestack import wire as carestack_wire
from simulators.generate import generate_world
from simulators.nexhealth.data import LOCATION_ID_BASE, native_key
from simulators.opendental.app import OpenDentalSimSettings
from simulators.opendental.app import create_app as opendental_app
from simulators.quickbooks.data import DEMO_BOOKS
from simulators.quickbooks.data import derive as derive_books
from simulators.server import serve_in_thread
from simulators.stripe.app import StripeSimSettings
from simulators.stripe.app import create_app as stripe_app
from simulators.stripe.data import StripeDataSettings
from simulators.stripe.data import derive as derive_processor
from simulators.stripe.discrepancies import processor_discrepancies
from simulators.twilio.data import PhoneSettings, lines
from simulators.twilio.data import derive as derive_phone
from simulators.twilio.sessions import REMINDER_REPLIES
from simulators.world import World, WorldSpec
from tests.test_twilio_simulator import ACCOUNT, all_pages, serve_twilio

KEY = "sk_test_writeback"
DEV_KEY = "writeback-developer-key"
ONLINE_TYPES = {"patient_portal", "payment_plan", "membership", "outstanding_balance_collection"}
# One office per PMS: only the Open Dental and NexHealth ones take a payment write.
OFFICES = tuple(
    o for o in WorldSpec().offices if o.key in ("od_riverside", "cs_bayview", "nx_oakridge")
)
WRITABLE = {"od_riverside", "nx_oakridge"}
ONLINE = StripeDataSettings(online_payment_rate=1.0, refund_rate=0.05, dispute_rate=0.05)
# A Tuesday morning in New York; a month of texts, most visits reminded, many replies.
NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
REMINDING = PhoneSettings(
    history_days=30,
    reminder_rate=0.9,
    reminder_reply_rate=0.7,
    reminder_cancel_share=0.25,
    reminder_other_share=0.15,
)


def make_world(persons: int = 150) -> World:
    return generate_world(WorldSpec(seed=11, n_persons=persons, offices=OFFICES, now_utc=NOW))


# --------------------------------------------------------------------------- online payments


@contextmanager
def serve_stripe(world: World, data: StripeDataSettings) -> Iterator[httpx.Client]:
    app = stripe_app(world, StripeSimSettings(api_key=KEY, requests_per_second=None, data=data))
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        serve_in_thread(app) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=10) as client,
    ):
        yield client


def list_all(client: httpx.Client, path: str, **params) -> list[dict]:
    out, after = [], None
    while True:
        query = {"limit": 100, **params, **({"starting_after": after} if after else {})}
        body = client.get(f"/v1{path}", params=query).json()
        out += body["data"]
        if not body["has_more"]:
            return out
        after = body["data"][-1]["id"]


def online(charges: list[dict]) -> list[dict]:
    return [c for c in charges if c["metadata"].get("origin") == "online"]


def patient_of(world: World, office: str, patient_id: int) -> dict:
    """The world's patient record a PMS patient id names (NexHealth ids carry the location)."""
    pat_num = patient_id
    if world.office(office).pms == "nexhealth":
        location, pat_num = native_key(patient_id)
        keys = [o.key for o in world.spec.offices]
        assert location == LOCATION_ID_BASE + keys.index(office)
    [row] = world.table("patients", office).filter(pl.col("PatNum") == pat_num).to_dicts()
    return row


@pytest.fixture(scope="module")
def stripe_world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def served_charges(stripe_world) -> Iterator[tuple[httpx.Client, list[dict]]]:
    with serve_stripe(stripe_world, ONLINE) as client:
        yield client, list_all(client, "/charges")


def test_online_charges_name_an_active_patient_of_a_writable_office(stripe_world, served_charges):
    _, charges = served_charges
    paid_online = online(charges)
    assert len(paid_online) > 100
    assert {c["metadata"]["location"] for c in paid_online} == WRITABLE  # never CareStack
    assert {c["metadata"]["payment_type"] for c in paid_online} == ONLINE_TYPES
    now = int(stripe_world.now_utc.timestamp())
    for charge in paid_online:
        meta = charge["metadata"]
        assert "pms_payment_ref" not in meta
        office, _, patient_id = meta["patient_ref"].partition(":")
        assert office == meta["location"]
        patient = patient_of(stripe_world, office, int(patient_id))
        assert patient["PatStatus"] == "Patient"
        created = datetime.fromtimestamp(charge["created"], UTC).date()
        assert patient["SecDateEntry"] < created  # registered before paying
        assert meta["pms_clinic_num"] == str(patient["ClinicNum"])
        assert charge["created"] <= now
        # Card not present (priced at 2.9% + 30c: see the payout test).
        assert charge["payment_method_details"]["type"] == "card"
        assert charge["amount"] >= 2_900
    # The PMS charges keep their references.
    assert all("pms_payment_ref" in c["metadata"] for c in charges if c not in paid_online)


def test_online_charges_are_paid_out_in_payouts_whose_components_add_up(served_charges):
    client, charges = served_charges
    ids = {c["id"] for c in online(charges)}
    fees = {
        t["source"]: t["fee"]
        for t in list_all(client, "/balance_transactions", type="charge")
        if t["source"] in ids
    }
    amounts = {c["id"]: c["amount"] for c in online(charges)}
    assert fees and all(fee == (amounts[s] * 290 + 5_000) // 10_000 + 30 for s, fee in fees.items())
    paid_out = set()
    payouts = list_all(client, "/payouts")
    for payout in payouts:
        items = list_all(client, "/balance_transactions", payout=payout["id"])
        swept = [t for t in items if t["type"] != "payout"]
        assert sum(t["net"] for t in swept) == payout["amount"]
        assert all(t["net"] == t["amount"] - t["fee"] for t in items)
        paid_out |= {t["source"] for t in swept} & ids
    assert len(paid_out) > 50
    refunded = {r["charge"] for r in list_all(client, "/refunds")} & ids
    assert refunded  # refunds hit online charges too


def test_more_online_charges_appear_as_the_world_advances():
    world = make_world()
    with serve_stripe(world, ONLINE) as client:
        before = {c["id"]: c for c in online(list_all(client, "/charges"))}
        old_now = int(world.now_utc.timestamp())
        world.advance(timedelta(days=6), seed=5)
        after = {c["id"]: c for c in online(list_all(client, "/charges"))}
    fixed = ("amount", "created", "payment_method_details")
    moved = 0
    for charge_id, charge in before.items():
        now = after[charge_id]
        assert {k: now[k] for k in fixed} == {k: charge[k] for k in fixed}
        meta, was = now["metadata"], charge["metadata"]
        assert (meta["location"], meta["payment_type"]) == (was["location"], was["payment_type"])
        if meta["patient_ref"] != was["patient_ref"]:
            # Only a payer made inactive since hands the payment to another active patient.
            office, _, patient_id = was["patient_ref"].partition(":")
            assert patient_of(world, office, int(patient_id))["PatStatus"] != "Patient"
            moved += 1
    assert moved < len(before) / 10
    new = [c for charge_id, c in after.items() if charge_id not in before]
    assert new and all(c["created"] > old_now for c in new)


def test_switched_off_there_are_none_and_every_other_record_is_byte_identical(stripe_world):
    off = replace(ONLINE, online_payment_rate=0.0)
    with serve_stripe(stripe_world, off) as client:
        plain = {c["id"]: orjson.dumps(c) for c in list_all(client, "/charges")}
        plain_refunds = {r["id"]: orjson.dumps(r) for r in list_all(client, "/refunds")}
    assert not [c for c in plain.values() if b'"origin"' in c]
    with serve_stripe(stripe_world, ONLINE) as client:
        charges = list_all(client, "/charges")
        refunds = list_all(client, "/refunds")
    ids = {c["id"] for c in online(charges)}
    assert ids
    assert {c["id"]: orjson.dumps(c) for c in charges if c["id"] not in ids} == plain
    assert {r["id"]: orjson.dumps(r) for r in refunds if r["charge"] not in ids} == plain_refunds


def test_the_known_discrepancies_of_every_other_charge_stay_as_they_were():
    """The demo's injected discrepancies (DEMO_BOOKS) with online payments on: every charge and
    PMS payment keeps its codes; an online charge is only a charge not posted to the PMS."""
    world = generate_world(WorldSpec(n_persons=300))
    with_online = replace(DEMO_BOOKS, stripe=replace(DEMO_BOOKS.stripe, online_payment_rate=0.5))
    frames = [
        derive_books(world, books).frames()["truth_reconciliation_discrepancies"]
        for books in (DEMO_BOOKS, with_online)
    ]
    online_ids = set(
        derive_processor(world, with_online.stripe).frames()["truth_online_payments"]["charge_id"]
    )
    assert online_ids

    def per_record(frame: pl.DataFrame, online: bool) -> pl.DataFrame:
        records = frame.filter(pl.col("object_kind").is_in(["charge", "pms_payment"]))
        mine = pl.col("object_id").is_in(list(online_ids))
        return records.filter(mine if online else ~mine).drop("payout_id", "arrival_date")

    before, after = frames
    assert per_record(before, online=False).height > 10
    assert per_record(after, online=False).equals(per_record(before, online=False))
    assert set(per_record(after, online=True)["code"]) == {"charge_not_posted_to_pms"}
    assert per_record(after, online=True).height == len(online_ids)


def test_truth_lists_online_payments_and_they_are_unposted_until_chairside_posts_them(
    tmp_path, monkeypatch
):
    world = make_world()
    offices = (world.office("od_riverside"),)
    monkeypatch.setenv("OD_DEVELOPER_KEY", DEV_KEY)
    od = opendental_app(
        world, OpenDentalSimSettings(developer_key=DEV_KEY, requests_per_second=None)
    )
    with serve_stripe(world, ONLINE) as stripe, serve_in_thread(od) as od_server:
        before = list_all(stripe, "/charges")
        assert stripe.post("/_sim/export", json={"dir": str(tmp_path / "a")}).status_code == 200
        truth = pl.read_parquet(tmp_path / "a" / "truth_online_payments.parquet")
        served = {c["id"]: c for c in online(before)}
        assert set(truth["charge_id"]) == set(served)
        for row in truth.iter_rows(named=True):
            charge = served[row["charge_id"]]
            assert charge["metadata"]["patient_ref"] == f"{row['office']}:{row['patient_id']}"
            assert (row["payment_type"], row["amount_cents"], row["created"]) == (
                charge["metadata"]["payment_type"], charge["amount"], charge["created"],
            )  # fmt: skip
            assert row["posted_pay_num"] is None
        # Until posted, each is a charge the PMS does not have; no other discrepancy appears.
        data = derive_processor(world, ONLINE)
        unposted = {
            d["object_id"]
            for d in processor_discrepancies(data)
            if d["code"] == "charge_not_posted_to_pms"
        }
        assert set(served) <= unposted

        # Chairside posts one to the patient's Open Dental ledger, marked with the charge id.
        row = truth.filter(pl.col("office") == offices[0].key).row(0, named=True)
        posted = httpx.post(
            f"{od_server.url}/api/v1/payments",
            headers={"Authorization": f"ODFHIR {DEV_KEY}/{offices[0].customer_key}"},
            json={
                "PatNum": row["patient_id"],
                "PayAmt": row["amount_cents"] / 100,
                "PayNote": f"Online payment [chairside pms_payment:1 {row['charge_id']}]",
            },
        )
        assert posted.status_code == 201, posted.text
        after = list_all(stripe, "/charges")
        assert stripe.post("/_sim/export", json={"dir": str(tmp_path / "b")}).status_code == 200
    # The posted payment is that charge, not a new card payment.
    assert sorted(c["id"] for c in after) == sorted(c["id"] for c in before)
    truth = pl.read_parquet(tmp_path / "b" / "truth_online_payments.parquet")
    posted_row = truth.filter(pl.col("charge_id") == row["charge_id"]).row(0, named=True)
    assert posted_row["posted_pay_num"] == posted.json()["PayNum"]
    data = derive_processor(world, ONLINE)
    codes = {(d["object_id"], d["code"]) for d in processor_discrepancies(data)}
    assert (row["charge_id"], "charge_not_posted_to_pms") not in codes
    others = set(served) - {row["charge_id"]}
    assert all((c, "charge_not_posted_to_pms") in codes for c in others)


# --------------------------------------------------------------------------- reminders


def message_api(url: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{url}/2010-04-01/Accounts/{ACCOUNT}", auth=(ACCOUNT, "test-auth-token"),
        timeout=10,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reminding(tmp_path_factory):
    """The Twilio simulator with reminders on: (world, served messages, exported truth)."""
    world = make_world(300)
    folder = tmp_path_factory.mktemp("reminders")
    with serve_twilio(world, phone=REMINDING) as twilio, message_api(twilio.url) as api:
        messages = all_pages(api, "/Messages.json", "messages", PageSize=200)
        assert httpx.post(f"{twilio.url}/_sim/export", json={"dir": str(folder)}).is_success
    truth = {p.stem: pl.read_parquet(p) for p in folder.glob("truth_*.parquet")}
    return world, {m["sid"]: m for m in messages}, truth


def test_reminders_go_from_the_line_to_the_patient_and_replies_come_back(reminding):
    world, served, truth = reminding
    messages = truth["truth_twilio_messages"]
    kinds = Counter(messages["kind"])
    assert kinds["reminder"] >= 30 and kinds["reminder_reply"] >= 15
    numbers = {line.number: line.office for line in lines(world)}
    replies = truth["truth_reminder_replies"]
    reminder_of = dict(zip(replies["sid"], replies["reminder_sid"], strict=True))
    for row in messages.filter(pl.col("kind").is_in(["reminder", "reminder_reply"])).to_dicts():
        message = served[row["sid"]]
        assert row["session_sid"] is None and row["caller_kind"] == "patient"
        if row["kind"] == "reminder":
            assert message["direction"] == "outbound-api"
            assert (message["from"], message["to"]) == (row["office_number"], row["phone"])
            assert "Reply C to confirm or X to cancel" in message["body"]
        else:
            assert message["direction"] == "inbound" and message["status"] == "received"
            assert (message["from"], message["to"]) == (row["phone"], row["office_number"])
            reminder = served[reminder_of[row["sid"]]]
            assert (reminder["to"], reminder["from"]) == (message["from"], message["to"])
            assert message["date_sent"] != reminder["date_sent"]
        assert numbers[row["office_number"]] == row["office"]
    # Every office reminds, whatever its PMS.
    assert set(messages.filter(pl.col("kind") == "reminder")["office"]) == {o.key for o in OFFICES}


def test_every_reply_is_about_a_visit_of_that_patient_on_the_schedule(reminding):
    world, served, truth = reminding
    replies = truth["truth_reminder_replies"]
    assert set(replies["intent"]) == {"confirm", "cancel", "other"}
    now = int(world.now_utc.timestamp())
    slots = {
        office.key: slot
        for account in carestack_wire.accounts(world).values()
        for slot, office in account.slots()
    }
    checked = Counter()
    for reply in replies.iter_rows(named=True):
        office = world.office(reply["office"])
        [apt] = (
            world.table("appointments", office.key)
            .filter(pl.col("AptNum") == reply["AptNum"])
            .to_dicts()
        )
        zone = ZoneInfo(office.timezone)
        start = int(apt["AptDateTime"].replace(tzinfo=zone).timestamp())
        reminded = datetime.strptime(
            served[reply["reminder_sid"]]["date_created"], "%a, %d %b %Y %H:%M:%S %z"
        ).timestamp()
        assert apt["PatNum"] == reply["PatNum"]
        assert reminded < reply["received"] < start <= reminded + 3 * 86_400
        booked = apt["SecDateTEntry"].replace(tzinfo=zone).timestamp()
        assert booked <= reminded
        # On the schedule when reminded: still Scheduled, or kept or broken only since.
        if start > now:
            assert apt["AptStatus"] == "Scheduled"
            checked["upcoming"] += 1
        elif apt["AptStatus"] == "Broken":
            assert apt["DateTStamp"].replace(tzinfo=zone).timestamp() > reminded
        else:
            assert apt["AptStatus"] in ("Scheduled", "Complete")
        assert reply["body"] in REMINDER_REPLIES[reply["intent"]]
        # The ids the office's PMS serves for the appointment and the patient.
        ids = (reply["appointment_id"], reply["patient_id"])
        if office.pms == "opendental":
            assert ids == (apt["AptNum"], apt["PatNum"])
        elif office.pms == "carestack":
            stride = slots[office.key] * carestack_wire.ID_STRIDE
            assert ids == (stride + apt["AptNum"], stride + apt["PatNum"])
        else:
            keys = [o.key for o in world.spec.offices]
            location = LOCATION_ID_BASE + keys.index(office.key)
            assert [native_key(i) for i in ids] == [
                (location, apt["AptNum"]), (location, apt["PatNum"])
            ]  # fmt: skip
        checked[office.pms] += 1
    assert min(checked.values()) > 0 and len(checked) == 4, checked


def test_new_reminders_and_replies_appear_as_the_world_advances():
    world = make_world()
    with serve_twilio(world, phone=REMINDING) as twilio, message_api(twilio.url) as api:
        before = {m["sid"]: m for m in all_pages(api, "/Messages.json", "messages")}
        old_now = int(world.now_utc.timestamp())
        world.advance(timedelta(days=3), seed=4)
        after = {m["sid"]: m for m in all_pages(api, "/Messages.json", "messages")}
        log, now = twilio.data.current()
    kinds = {m.sid: m.kind for m in log.messages}
    for message_sid, message in before.items():
        if message["status"] in ("delivered", "undelivered", "received"):
            assert after[message_sid] == message
    new = Counter(kinds[s] for s in after if s not in before)
    assert new["reminder"] > 0 and new["reminder_reply"] > 0, new
    fresh = [m for m in log.messages if m.sid in after and m.sid not in before]
    assert all(old_now < m.created <= now for m in fresh)


def test_reminders_off_send_none_and_leave_every_other_text_and_call_byte_identical():
    world = make_world()
    off = replace(REMINDING, reminder_rate=0.0)
    served = {}
    for name, phone in (("off", off), ("on", REMINDING)):
        with serve_twilio(world, phone=phone) as twilio, message_api(twilio.url) as api:
            served[name] = {
                entity: {
                    r["sid"]: orjson.dumps(r)
                    for r in all_pages(api, f"/{entity.title()}.json", entity, PageSize=500)
                }
                for entity in ("calls", "messages")
            }
            log, _ = twilio.data.current()
            served[name]["kinds"] = Counter(m.kind for m in log.messages)
    assert served["off"]["kinds"]["reminder"] == served["off"]["kinds"]["reminder_reply"] == 0
    assert served["on"]["kinds"]["reminder"] > 0
    assert served["on"]["calls"] == served["off"]["calls"]
    extra = set(served["on"]["messages"]) - set(served["off"]["messages"])
    assert len(extra) == served["on"]["kinds"]["reminder"] + served["on"]["kinds"]["reminder_reply"]
    kept = {s: b for s, b in served["on"]["messages"].items() if s not in extra}
    assert kept == served["off"]["messages"]


def test_no_reminder_goes_out_right_after_an_unanswered_call_from_that_number():
    """Such a text would read as the call's automatic text-back (docs/calls.md): on lines so
    busy that some reminders fall due minutes after a missed call, those wait."""
    world = make_world(100)
    busy = replace(
        REMINDING,
        history_days=7,
        reminder_rate=1.0,
        calls_per_patient_day=80,
        prospect_share=0.0,
    )
    log = derive_phone(world, busy)
    ends = defaultdict(list)
    for s in log.sessions:
        if s.direction == "inbound" and s.outcome != "answered":
            ends[(s.line.office, s.caller.phone)].append(s.end)
    reminders = [m for m in log.messages if m.kind == "reminder"]
    for m in reminders:
        assert not any(0 <= m.created - end <= 600 for end in ends[(m.line.office, m.to)])
    # Sent at 11:00-11:30 local unless held back: some were.
    zones = {o.key: ZoneInfo(o.timezone) for o in OFFICES}
    local = [datetime.fromtimestamp(m.created, zones[m.line.office]) for m in reminders]
    held = [t for t in local if (t.hour, t.minute) >= (11, 30)]
    assert held and len(held) < len(local)
