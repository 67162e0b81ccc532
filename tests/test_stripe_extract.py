"""Stripe extraction over real HTTP on loopback into a real landing zone, with the fault suite."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from chairside.config import Organisation
from extract.http import ApiError
from extract.state import SyncState
from extract.stripe.connector import sync_entity
from extract.stripe.streams import ENTITIES
from simulators.faults import FaultRule
from simulators.server import serve_in_thread
from simulators.stripe.app import StripeSimSettings, create_app
from simulators.world import World
from tests.test_stripe_simulator import BUSY, KEY, make_world

CONNECTION = "stripe_main"


@dataclass
class Stripe:
    world: World
    app: object
    url: str

    @property
    def faults(self):
        return self.app.state.faults

    @property
    def stats(self):
        return self.app.state.stats

    def objects(self, entity: str) -> dict[str, dict]:
        """What the API serves now, by landing key (the truth landing must converge to)."""
        snapshot = self.app.state.sim.snapshot()
        data = snapshot.data
        if entity == "payout_balance_transactions":
            rendered = {o["id"]: o for o in snapshot.lists["/balance_transactions"].objects}
            return {
                f"{p.id}:{t.id}": rendered[t.id] for p in data.payouts for t in data.itemized(p)
            }
        path = "/balance_transactions" if entity == "balance_transactions" else f"/{entity}"
        return dict(snapshot.lists[path].by_id)


@contextmanager
def serve_stripe(world: World, monkeypatch, **settings) -> Iterator[Stripe]:
    settings = {"requests_per_second": None, "data": BUSY, **settings}
    app = create_app(world, StripeSimSettings(api_key=KEY, **settings))
    monkeypatch.setenv("STRIPE_TEST_KEY", KEY)
    with serve_in_thread(app) as server:
        yield Stripe(world, app, server.url)


@pytest.fixture
def stripe(monkeypatch) -> Iterator[Stripe]:
    with serve_stripe(make_world(), monkeypatch) as served:
        yield served


def stripe_connection(sim: Stripe, **settings):
    settings = {"requests_per_second": 500.0, "batch_rows": 40, "read_timeout_s": 5.0, **settings}
    org = Organisation.model_validate(
        {
            "id": "test_group",
            "name": "Test Group",
            "connections": [
                {
                    "id": CONNECTION,
                    "vendor": "stripe",
                    "base_url": f"{sim.url}/v1",
                    "api_key_env": "STRIPE_TEST_KEY",
                    "timezone": "America/New_York",
                    **settings,
                }
            ],
        }
    )
    return org.connection(CONNECTION)


def sync_all(connection, landing_root: Path, mode: str = "incremental") -> dict:
    return {
        entity: sync_entity(connection, entity, landing_root=landing_root, mode=mode)
        for entity in ENTITIES
    }


def landed_latest(landing_root: Path, vendor: str, entity: str) -> dict[str, dict]:
    """The latest landed version of each record, by landing key."""
    glob = str(landing_root / vendor / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.execute(
            f"""
            select _record_key, _record from read_parquet('{glob}', union_by_name=true)
            qualify row_number() over (partition by _connection_id, _record_key
                order by _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc) = 1
            """
        ).fetchall()
    return {key: json.loads(record) for key, record in rows}


def landed_count(landing_root: Path, vendor: str, entity: str) -> int:
    glob = str(landing_root / vendor / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from read_parquet('{glob}')").fetchone()[0]


def assert_landing_matches(sim: Stripe, landing_root: Path, entities=ENTITIES) -> None:
    for entity in entities:
        assert landed_latest(landing_root, "stripe", entity) == sim.objects(entity), entity


def test_full_sync_lands_every_object_and_the_itemization(stripe, landing_root):
    results = sync_all(stripe_connection(stripe), landing_root, mode="full")
    assert_landing_matches(stripe, landing_root)
    assert all(r.quarantined == 0 for r in results.values())
    assert results["balance_transactions"].batches >= 2  # small batches: several checkpoints
    payouts = stripe.objects("payouts")
    assert results["payout_balance_transactions"].requests >= len(payouts)
    assert results["charges"].cursor_after == str(
        max(c["created"] for c in stripe.objects("charges").values())
    )


def test_second_sync_changes_nothing_and_the_world_moving_on_is_picked_up(stripe, landing_root):
    connection = stripe_connection(stripe)
    stripe.world.advance(timedelta(days=3, hours=20), seed=2)  # Thursday 11:00 UTC: in transit
    sync_all(connection, landing_root)
    first = {e: landed_latest(landing_root, "stripe", e) for e in ENTITIES}
    sync_all(connection, landing_root)
    assert {e: landed_latest(landing_root, "stripe", e) for e in ENTITIES} == first

    payouts_before = stripe.objects("payouts")
    stripe.world.advance(timedelta(days=3), seed=5)
    results = sync_all(connection, landing_root)
    now = stripe.objects
    # Incremental: only the overlap window is re-read, far less than everything.
    assert results["charges"].rows < len(now("charges"))
    for entity in ("charges", "refunds", "balance_transactions", "payouts", "disputes"):
        latest = landed_latest(landing_root, "stripe", entity)
        assert set(latest) == set(now(entity)), entity
    # Objects that changed state inside the window are current; nothing is duplicated in keys.
    payouts = landed_latest(landing_root, "stripe", "payouts")
    moved = [k for k, p in payouts_before.items() if p["status"] != now("payouts")[k]["status"]]
    assert moved and all(payouts[k] == now("payouts")[k] for k in moved)
    assert landed_latest(landing_root, "stripe", "disputes") == now("disputes")  # snapshot
    # The daily full sync brings everything else (a charge refunded weeks later) up to date.
    sync_all(connection, landing_root, mode="full")
    assert_landing_matches(stripe, landing_root)


def test_cursor_ties_and_late_objects_inside_the_overlap(stripe, landing_root):
    """Page size 1 over charges sharing one creation second, then an object created behind
    the cursor: ids page exactly, created[gte] re-reads the tie, the overlap catches the late
    object."""
    world = stripe.world
    with world.lock:
        payments = world.tables["payments"]
        cards = stripe.objects("charges")
        latest = max(cards.values(), key=lambda c: (c["created"], c["id"]))
        office, paynum = latest["metadata"]["pms_payment_ref"].split(":")
        stamp = payments.filter((pl.col("office") == office) & (pl.col("PayNum") == int(paynum)))[
            "SecDateTEdit"
        ][0]
        tied = (pl.col("office") == office) & (pl.col("PayNum") != int(paynum))
        card_types = world.tables["definitions"].filter(pl.col("Category") == 10)
        card_types = card_types.filter(pl.col("ItemName").is_in(["Credit Card", "Patient Portal"]))
        is_card = pl.col("PayType").is_in(card_types["DefNum"].implode())
        others = payments.filter(tied & is_card).sort("SecDateTEdit").tail(2)["PayNum"].to_list()
        world.tables["payments"] = payments.with_columns(
            SecDateTEdit=pl.when((pl.col("office") == office) & pl.col("PayNum").is_in(others))
            .then(pl.lit(stamp))
            .otherwise(pl.col("SecDateTEdit"))
        )
    connection = stripe_connection(stripe, page_size=1, overlap_minutes=45)
    first = sync_entity(connection, "charges", landing_root=landing_root)
    cursor = int(first.cursor_after)
    assert sum(c["created"] == cursor for c in stripe.objects("charges").values()) == 3
    assert set(landed_latest(landing_root, "stripe", "charges")) == set(stripe.objects("charges"))
    assert first.rows == len(stripe.objects("charges"))  # no page read twice

    # A payment entered 30 minutes before the cursor shows up only now (late visibility).
    with world.lock:
        payments = world.tables["payments"]
        late = payments.filter(pl.col("office") == office).filter(is_card).tail(1)
        late = late.with_columns(
            PayNum=pl.lit(int(payments["PayNum"].max()) + 1, pl.Int64),
            SecDateTEdit=pl.lit(stamp - timedelta(minutes=30)),
        )
        world.tables["payments"] = pl.concat([payments, late])
    again = sync_entity(connection, "charges", landing_root=landing_root)
    window = [c for c in stripe.objects("charges").values() if c["created"] >= cursor - 45 * 60]
    assert again.rows == len(window) >= 4  # the three tied at the cursor (gte) and the late one
    assert set(landed_latest(landing_root, "stripe", "charges")) == set(stripe.objects("charges"))


def test_failure_mid_sync_keeps_the_cursor_and_the_rerun_resumes(stripe, landing_root):
    connection = stripe_connection(stripe, max_attempts=2, page_size=20)
    sync_entity(connection, "balance_transactions", landing_root=landing_root)
    state = SyncState(landing_root)
    cursor = state.cursor(CONNECTION, "stripe", "balance_transactions")
    stripe.world.advance(timedelta(days=1), seed=3)

    stripe.faults.add(
        FaultRule(path="^/balance_transactions", kind="status", code=500, skip=4, times=None)
    )
    with pytest.raises(ApiError) as error:
        sync_entity(connection, "balance_transactions", landing_root=landing_root, mode="full")
    assert "stripe[stripe_main] GET /balance_transactions" in str(error.value)
    assert "HTTP 500" in str(error.value)
    assert state.cursor(CONNECTION, "stripe", "balance_transactions") == cursor
    failed = [r for r in state.runs(CONNECTION) if r["status"] == "failed"]
    assert len(failed) == 1 and json.loads(failed[0]["resume_token"])["starting_after"]
    landed_before = landed_count(landing_root, "stripe", "balance_transactions")

    stripe.faults.clear()
    result = sync_entity(connection, "balance_transactions", landing_root=landing_root, mode="full")
    assert result.resumed and result.load_id == failed[0]["load_id"]
    assert int(state.cursor(CONNECTION, "stripe", "balance_transactions")) > int(cursor)
    truth = stripe.objects("balance_transactions")
    assert landed_latest(landing_root, "stripe", "balance_transactions") == truth
    # The resumed run continued after the last durable page: nothing landed twice, or lost.
    resumed_rows = landed_count(landing_root, "stripe", "balance_transactions") - landed_before
    assert failed[0]["rows"] > 0 and failed[0]["rows"] + resumed_rows == len(truth)


def test_itemization_crawl_resumes_after_the_last_checkpointed_payout(stripe, landing_root):
    connection = stripe_connection(stripe, max_attempts=1, batch_rows=5)
    sync_entity(connection, "payouts", landing_root=landing_root)
    payouts = len(stripe.objects("payouts"))
    stripe.faults.add(
        FaultRule(path="^/balance_transactions", kind="status", code=500, skip=10, times=None)
    )
    with pytest.raises(ApiError):
        sync_entity(connection, "payout_balance_transactions", landing_root=landing_root)
    stripe.faults.clear()
    before = stripe.app.state.sim.stats.snapshot()
    result = sync_entity(connection, "payout_balance_transactions", landing_root=landing_root)
    after = stripe.app.state.sim.stats.snapshot()

    def answered(stats):
        return sum(s["count"] for s in stats if s["path"] == "/balance_transactions"
                   and s["status"] == 200)  # fmt: skip

    assert result.resumed
    # A checkpoint falls every 5 rows (a payout or two), so only the last few are asked again.
    assert answered(after) - answered(before) <= payouts - 8
    items = landed_latest(landing_root, "stripe", "payout_balance_transactions")
    assert items == stripe.objects("payout_balance_transactions")


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(path="^/charges", kind="status", code=429, retry_after=1),
        FaultRule(path="^/charges", kind="status", code=429, retry_after=1, retry_after_date=True),
        FaultRule(path="^/charges", kind="status", code=429),
        FaultRule(path="^/charges", kind="status", code=503),
        FaultRule(path="^/charges", kind="status", code=502, skip=1),
        FaultRule(path="^/charges", kind="slow", delay=3.0, skip=1),
        FaultRule(path="^/charges", kind="truncate", skip=1),
        FaultRule(path="^/charges", kind="non_json"),
    ],
    ids=["429-retry-after", "429-http-date", "429-bare", "503", "502", "slow", "truncated",
         "html"],
)  # fmt: skip
def test_transient_faults_are_survived_with_identical_results(stripe, landing_root, rule):
    connection = stripe_connection(stripe, read_timeout_s=1.0, page_size=50)
    stripe.faults.add(rule)
    result = sync_entity(connection, "charges", landing_root=landing_root)
    assert result.quarantined == 0
    assert landed_latest(landing_root, "stripe", "charges") == stripe.objects("charges")
    assert rule.spent or rule.times is None, "the fault never fired"


def test_persistent_failure_names_source_and_endpoint_and_moves_no_cursor(stripe, landing_root):
    connection = stripe_connection(stripe, max_attempts=2)
    stripe.faults.add(FaultRule(path="^/payouts", kind="status", code=429, times=None))
    with pytest.raises(ApiError, match=r"stripe\[stripe_main\] GET /payouts: gave up"):
        sync_entity(connection, "payouts", landing_root=landing_root)
    assert SyncState(landing_root).cursor(CONNECTION, "stripe", "payouts") is None
    assert {"path": "/payouts", "status": 429, "count": 2} in stripe.stats.snapshot()


def test_client_rate_limit_keeps_under_the_servers_throttle(landing_root, monkeypatch):
    throttle = {"requests_per_second": 25.0, "throttle_burst": 2.0}
    with serve_stripe(make_world(persons=60), monkeypatch, **throttle) as sim:
        connection = stripe_connection(sim, requests_per_second=20.0, page_size=10)
        result = sync_entity(connection, "balance_transactions", landing_root=landing_root)
        statuses = {row["status"] for row in sim.stats.snapshot()}
    assert result.requests >= 3
    assert statuses == {200}


def test_bad_records_are_quarantined_and_logs_carry_no_patient_data(stripe, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    stripe.faults.add(
        FaultRule(path="^/charges", kind="corrupt", record_field="amount", value="12.50")
    )
    result = sync_entity(stripe_connection(stripe), "charges", landing_root=landing_root)
    assert result.quarantined == 1
    glob = str(landing_root / "_quarantine" / "**" / "*.parquet")
    with duckdb.connect() as con:
        [(reason, key)] = con.execute(
            f"select _reason, _record_key from read_parquet('{glob}', union_by_name=true)"
        ).fetchall()
    assert reason.startswith("amount: Input should be a valid integer") and key.startswith("ch_")
    assert "12.50" not in reason
    patients = stripe.world.table("patients")
    sentinels = {
        value
        for column in ("LName", "FName", "Email", "WirelessPhone")
        for value in patients[column].to_list()
        if value and len(value) > 3
    }
    assert "quarantined" in caplog.text
    assert not [s for s in sentinels if s in caplog.text]
    assert KEY not in caplog.text
