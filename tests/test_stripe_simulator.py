"""The Stripe simulator speaks the contract over loopback, and its data follows the world."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import polars as pl
import pytest

from simulators.faults import FaultRule
from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.stripe.app import StripeSimSettings, create_app
from simulators.stripe.data import CARD_PAY_TYPES, StripeDataSettings, derive
from simulators.world import WorldSpec

KEY = "sk_test_chairside"
# One office per PMS: card payments of every vendor's offices go through the one account.
OFFICES = tuple(
    o for o in WorldSpec().offices if o.key in ("od_riverside", "cs_hillcrest", "nx_oakridge")
)
# More refunds, disputes and failed payouts than a real account, so a small world has some.
BUSY = StripeDataSettings(refund_rate=0.05, dispute_rate=0.05, failed_payout_rate=0.05)


def make_world(seed: int = 11, persons: int = 150):
    return generate_world(WorldSpec(seed=seed, n_persons=persons, offices=OFFICES))


@pytest.fixture(scope="module")
def served():
    world = make_world()
    app = create_app(world, StripeSimSettings(api_key=KEY, requests_per_second=None, data=BUSY))
    with serve_in_thread(app) as server:
        client = httpx.Client(
            base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {KEY}"}
        )
        yield world, app, client, server.url
        client.close()


def list_all(client: httpx.Client, path: str, **params) -> list[dict]:
    out, after = [], None
    while True:
        query = {"limit": 100, **params, **({"starting_after": after} if after else {})}
        body = client.get(path, params=query).json()
        out += body["data"]
        if not body["has_more"]:
            return out
        after = body["data"][-1]["id"]


def card_payments(world) -> pl.DataFrame:
    types = world.table("definitions").filter(
        (pl.col("Category") == 10) & pl.col("ItemName").is_in(CARD_PAY_TYPES)
    )
    return world.table("payments").join(
        types.select("office", pl.col("DefNum").alias("PayType")), on=["office", "PayType"]
    )


def test_every_pms_card_payment_is_one_charge_with_its_references(served):
    world, _, client, _ = served
    charges = list_all(client, "/charges")
    cards = card_payments(world)
    assert len(charges) == cards.height > 20
    by_ref = {c["metadata"]["pms_payment_ref"]: c for c in charges}
    for office, paynum, patnum, amount in cards.select(
        "office", "PayNum", "PatNum", "PayAmt"
    ).iter_rows():
        charge = by_ref[f"{office}:{paynum}"]
        assert charge["amount"] == round(amount * 100)
        assert charge["metadata"]["patient_ref"] == f"{office}:{patnum}"
        assert charge["metadata"]["location"] == office
    assert {c["metadata"]["location"] for c in charges} == {o.key for o in OFFICES}
    kinds = Counter(c["metadata"]["payment_type"] for c in charges)
    assert {"card_terminal", "patient_portal"} <= set(kinds)
    # Card present is cheaper: 2.7% + 5c against 2.9% + 30c.
    charge = next(c for c in charges if c["payment_method_details"]["type"] == "card_present")
    txn = client.get("/balance_transactions", params={"source": charge["id"]}).json()["data"][0]
    assert txn["fee"] == (charge["amount"] * 270 + 5000) // 10000 + 5
    assert txn["net"] == txn["amount"] - txn["fee"]


def test_list_envelope_cursor_paging_and_filters(served):
    _, _, client, _ = served
    every = list_all(client, "/charges")
    first = client.get("/charges", params={"limit": 3}).json()
    assert first["object"] == "list" and first["url"] == "/v1/charges" and first["has_more"]
    assert [c["id"] for c in first["data"]] == [c["id"] for c in every[:3]]
    created = [c["created"] for c in every]
    assert created == sorted(created, reverse=True)  # newest first
    assert len(client.get("/charges").json()["data"]) == 10  # Stripe's default limit
    after = client.get("/charges", params={"limit": 2, "starting_after": every[3]["id"]}).json()
    assert [c["id"] for c in after["data"]] == [every[4]["id"], every[5]["id"]]
    before = client.get("/charges", params={"limit": 2, "ending_before": every[3]["id"]}).json()
    assert [c["id"] for c in before["data"]] == [every[1]["id"], every[2]["id"]]
    assert before["has_more"]
    middle = every[len(every) // 2]["created"]
    since = list_all(client, "/charges", **{"created[gte]": middle})
    assert since == [c for c in every if c["created"] >= middle]
    until = list_all(client, "/charges", **{"created[lt]": middle})
    assert len(since) + len(until) == len(every)


def test_payout_itemization_nets_to_the_payout(served):
    _, _, client, _ = served
    payouts = list_all(client, "/payouts")
    assert {p["status"] for p in payouts} >= {"paid", "failed"}
    for payout in payouts:
        items = list_all(client, "/balance_transactions", payout=payout["id"])
        own = [t for t in items if t["type"] == "payout"]
        assert [t["id"] for t in own] == [payout["balance_transaction"]]
        assert own[0]["amount"] == -payout["amount"]
        assert sum(t["net"] for t in items if t["type"] != "payout") == payout["amount"]
    # A failed payout's money comes back and is swept into a later payout.
    failed = next(p for p in payouts if p["status"] == "failed")
    returned = failed["failure_balance_transaction"]
    later = [p for p in payouts if p["created"] > failed["created"]]
    assert any(
        returned in {t["id"] for t in list_all(client, "/balance_transactions", payout=p["id"])}
        for p in later
    )


def test_errors_have_stripes_shape_and_never_echo_the_key(served):
    _, _, client, url = served
    missing = httpx.get(f"{url}/v1/charges")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    wrong = httpx.get(f"{url}/v1/charges", headers={"Authorization": "Bearer sk_test_wrong"})
    assert wrong.status_code == 401 and "sk_test_wrong" not in wrong.text
    basic = httpx.get(f"{url}/v1/refunds", auth=(KEY, ""))
    assert basic.status_code == 200  # Stripe also takes the key as a Basic user name
    too_many = client.get("/charges", params={"limit": 101})
    assert too_many.status_code == 400
    assert too_many.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_invalid_integer",
        "message": "Invalid limit: must be between 1 and 100",
        "param": "limit",
    }
    unknown = client.get("/charges", params={"starting_after": "ch_unknown"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "resource_missing"
    assert client.get("/balance_transactions", params={"payout": "po_x"}).status_code == 404


def test_throttle_and_scripted_faults(monkeypatch):
    world = make_world(persons=60)
    settings = StripeSimSettings(
        api_key=KEY, requests_per_second=1.0, throttle_burst=2.0, throttle_retry_after=1
    )
    app = create_app(world, settings)
    with serve_in_thread(app) as server:
        client = httpx.Client(
            base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {KEY}"}
        )
        statuses = [client.get("/payouts", params={"limit": 1}).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and 429 in statuses[2:]
        throttled = client.get("/payouts")
        assert throttled.json()["error"]["code"] == "rate_limit"
        assert throttled.headers["Retry-After"] == "1"
        app.state.settings.requests_per_second = None
        app.state.sim.throttle = type(app.state.sim.throttle)(None, 1)
        app.state.faults.add(
            FaultRule(path="^/charges", kind="corrupt", record_field="amount", value="12")
        )
        assert client.get("/charges").json()["data"][0]["amount"] == "12"
        httpx.post(f"{server.url}/_sim/faults", json=[{"path": "^/refunds", "kind": "status",
                                                       "code": 503}])  # fmt: skip
        assert client.get("/refunds").status_code == 503
        assert client.get("/refunds").status_code == 200
        stats = httpx.get(f"{server.url}/_sim/stats").json()["requests"]
        assert {"path": "/refunds", "status": 503, "count": 1} in stats
        client.close()


def test_truth_export(served, tmp_path):
    _, _, client, url = served
    httpx.post(f"{url}/_sim/export", json={"dir": str(tmp_path)}).raise_for_status()
    assert (tmp_path / "truth_stripe_charge_links.parquet").exists()
    charges = pl.read_parquet(tmp_path / "stripe_charges.parquet")
    assert charges.height == len(list_all(client, "/charges"))
    txns = pl.read_parquet(tmp_path / "stripe_balance_transactions.parquet")
    payouts = pl.read_parquet(tmp_path / "stripe_payouts.parquet")
    sums = txns.filter(pl.col("type") != "payout").group_by("payout").agg(pl.col("net").sum())
    joined = payouts.join(sums, left_on="id", right_on="payout")
    assert joined.height == payouts.height
    assert (joined["net"] == joined["amount"]).all()


def test_records_stay_stable_as_the_world_advances():
    world = make_world(persons=80)
    before = derive(world, BUSY)
    charges = {c.id: before.charge_object(c) for c in before.charges}
    payouts = {p.id: before.payout_object(p) for p in before.payouts}
    world.advance(timedelta(days=4), seed=3)
    after = derive(world, BUSY)
    new_charges = {c.id: after.charge_object(c) for c in after.charges}
    new_payouts = {p.id: after.payout_object(p) for p in after.payouts}
    assert set(charges) < set(new_charges) and set(payouts) < set(new_payouts)
    for key, payout in payouts.items():
        # Only what Stripe itself changes later may differ: the status moves on.
        changed = {k for k in payout if payout[k] != new_payouts[key][k]}
        assert changed <= {"status", "reconciliation_status", "failure_balance_transaction",
                           "failure_code", "failure_message"}  # fmt: skip
        assert payout["amount"] == new_payouts[key]["amount"]
    for key, charge in charges.items():
        changed = {k for k in charge if charge[k] != new_charges[key][k]}
        assert changed <= {"amount_refunded", "refunded", "disputed"}


def test_discrepancies_are_off_by_default_and_switchable():
    world = make_world(persons=80)
    assert derive(world).unrecorded.height == 0
    assert all(c.office is not None for c in derive(world).charges)
    odd = derive(world, StripeDataSettings(missing_charge_rate=0.2, orphan_charge_rate=0.1))
    cards = card_payments(world).height
    orphans = [c for c in odd.charges if c.office is None]
    assert odd.unrecorded.height > 0 and orphans
    assert len(odd.charges) - len(orphans) + odd.unrecorded.height == cards
    assert all("pms_payment_ref" not in odd.charge_object(c)["metadata"] for c in orphans)
