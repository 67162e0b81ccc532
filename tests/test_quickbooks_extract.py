"""QuickBooks extraction over loopback HTTP: OAuth rotation, /query paging, the fault suite."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from chairside.config import Organisation
from extract.http import ApiError
from extract.quickbooks.auth import TokenError, TokenStore
from extract.quickbooks.connector import sync_entity
from extract.quickbooks.streams import ENTITIES, STREAMS
from extract.state import SyncState
from simulators.faults import FaultRule
from simulators.quickbooks.app import create_app
from simulators.quickbooks.data import QuickBooksDataSettings
from simulators.server import serve_in_thread
from simulators.world import World
from tests.test_quickbooks_simulator import CLIENT, REALM, SEED_TOKEN, sim_settings
from tests.test_stripe_extract import landed_count, landed_latest
from tests.test_stripe_simulator import BUSY, make_world

CONNECTION = "qbo_main"
QUERY_PATH = f"/v3/company/{REALM}/query"


@dataclass
class QuickBooks:
    world: World
    app: object
    url: str

    @property
    def faults(self):
        return self.app.state.faults

    @property
    def stats(self):
        return self.app.state.stats

    @property
    def tokens(self):
        return self.app.state.sim.tokens

    def objects(self, entity: str) -> dict[str, dict]:
        """What the API serves now, by Id (the truth landing must converge to)."""
        company = self.app.state.sim.company()
        return {o["Id"]: o for o in company.objects(STREAMS[entity].qbo_entity)}


@contextmanager
def serve_quickbooks(world: World, monkeypatch, **settings) -> Iterator[QuickBooks]:
    app = create_app(world, sim_settings(**settings))
    monkeypatch.setenv("QB_CLIENT_ID", CLIENT[0])
    monkeypatch.setenv("QB_CLIENT_SECRET", CLIENT[1])
    monkeypatch.setenv("QB_REFRESH_TOKEN", SEED_TOKEN)
    with serve_in_thread(app) as server:
        yield QuickBooks(world, app, server.url)


@pytest.fixture
def qbo(monkeypatch) -> Iterator[QuickBooks]:
    with serve_quickbooks(make_world(), monkeypatch) as served:
        yield served


def qbo_connection(sim: QuickBooks, **settings):
    settings = {
        "requests_per_second": 500.0,
        "batch_rows": 30,
        "page_size": 20,
        "read_timeout_s": 5.0,
        **settings,
    }
    org = Organisation.model_validate(
        {
            "id": "test_group",
            "name": "Test Group",
            "connections": [
                {
                    "id": CONNECTION,
                    "vendor": "quickbooks",
                    "base_url": sim.url,
                    "realm_id": REALM,
                    "token_url": f"{sim.url}/oauth2/v1/tokens/bearer",
                    "client_id_env": "QB_CLIENT_ID",
                    "client_secret_env": "QB_CLIENT_SECRET",
                    "refresh_token_env": "QB_REFRESH_TOKEN",
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


def latest(landing_root: Path, entity: str) -> dict[str, dict]:
    return landed_latest(landing_root, "quickbooks", entity)


def assert_landing_matches(sim: QuickBooks, landing_root: Path, entities=ENTITIES) -> None:
    for entity in entities:
        assert latest(landing_root, entity) == sim.objects(entity), entity


def test_full_sync_lands_everything_and_keeps_the_rotated_refresh_token(
    qbo, landing_root, monkeypatch
):
    results = sync_all(qbo_connection(qbo), landing_root, mode="full")
    assert_landing_matches(qbo, landing_root)
    assert all(r.quarantined == 0 for r in results.values())
    assert results["deposits"].batches >= 2 and results["deposits"].cursor_after
    assert results["accounts"].rows == 14  # the inactive account too
    store = TokenStore.for_connection(landing_root, CONNECTION)
    saved = store.load()
    assert saved["refresh_token"] != SEED_TOKEN  # rotated, and the newest one is kept
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert qbo.tokens.refreshes == 1  # one access token served every stream

    # The seed is used once: later runs live on the stored token, even after the access
    # token is revoked server-side (401 -> refresh with the stored refresh token).
    monkeypatch.setenv("QB_REFRESH_TOKEN", "RT1-long-gone")
    qbo.tokens.expire_access_tokens()
    sync_entity(qbo_connection(qbo), "classes", landing_root=landing_root)
    assert store.load()["refresh_token"] not in (saved["refresh_token"], SEED_TOKEN)
    assert not list(store.path.parent.glob("*.tmp"))


def test_second_sync_changes_nothing_and_edits_appear_after_the_world_advances(
    landing_root, monkeypatch
):
    data = QuickBooksDataSettings(stripe=BUSY, reviewed_deposit_rate=1.0)
    with serve_quickbooks(make_world(), monkeypatch, data=data) as qbo:
        qbo.world.advance(timedelta(days=3, hours=20), seed=2)  # deposits posted this week
        edits_appear(qbo, landing_root)


def edits_appear(qbo: QuickBooks, landing_root: Path) -> None:
    connection = qbo_connection(qbo)
    sync_all(connection, landing_root)
    first = {e: latest(landing_root, e) for e in ENTITIES}
    sync_all(connection, landing_root)
    assert {e: latest(landing_root, e) for e in ENTITIES} == first

    qbo.world.advance(timedelta(days=4), seed=5)
    results = sync_all(connection, landing_root)
    assert_landing_matches(qbo, landing_root)
    deposits = qbo.objects("deposits")
    assert results["deposits"].rows < len(deposits)  # only the window was read
    edited = [k for k, d in deposits.items() if k in first["deposits"] and d["SyncToken"] == "1"
              and first["deposits"][k]["SyncToken"] == "0"]  # fmt: skip
    assert edited  # reviewed (SyncToken 0 -> 1) after the first sync, and picked up


def test_access_token_expiring_mid_sync_is_refreshed_and_persisted(landing_root, monkeypatch):
    with serve_quickbooks(make_world(), monkeypatch, access_token_max_uses=2) as sim:
        result = sync_entity(qbo_connection(sim), "deposits", landing_root=landing_root)
        assert result.requests >= 5 and sim.tokens.refreshes >= 3
        assert latest(landing_root, "deposits") == sim.objects("deposits")
        statuses = {(s["path"], s["status"]) for s in sim.stats.snapshot()}
        assert (QUERY_PATH.removeprefix(f"/v3/company/{REALM}"), 401) in statuses
        # The stored refresh token is the one the server now accepts: a new process can go on.
        stored = TokenStore.for_connection(landing_root, CONNECTION).load()["refresh_token"]
        assert httpx.post(
            sim.url + "/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": stored},
            auth=CLIENT,
        ).is_success


def test_concurrent_syncs_share_one_token_chain(landing_root, monkeypatch):
    """Two streams refresh at the same time: the store's lock serialises the rotation, so
    neither uses a refresh token the other has already spent."""
    with serve_quickbooks(make_world(), monkeypatch, access_token_max_uses=3) as sim:
        connection = qbo_connection(sim, page_size=10)
        # Created up front: two threads creating a fresh _state.sqlite at once can collide on
        # "pragma journal_mode=wal" (extract/state.py), which is not what this test is about.
        SyncState(landing_root)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(
                pool.map(
                    lambda e: sync_entity(connection, e, landing_root=landing_root),
                    ["deposits", "journal_entries"],
                )
            )
        assert all(r.rows for r in results)
        assert_landing_matches(sim, landing_root, ("deposits", "journal_entries"))


def test_a_spent_refresh_token_fails_clearly_and_moves_no_cursor(qbo, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    stolen = httpx.post(
        qbo.url + "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": SEED_TOKEN},
        auth=CLIENT,
    )
    assert stolen.is_success  # someone else used (and rotated away) our seed token
    with pytest.raises(TokenError) as error:
        sync_entity(qbo_connection(qbo), "deposits", landing_root=landing_root)
    message = str(error.value)
    assert "quickbooks[qbo_main] POST /oauth2/v1/tokens/bearer" in message
    assert "invalid_grant" in message and "QB_REFRESH_TOKEN" in message
    assert SEED_TOKEN not in message and CLIENT[1] not in message
    assert SyncState(landing_root).cursor(CONNECTION, "quickbooks", "deposits") is None


def test_failure_mid_sync_keeps_the_cursor_and_the_rerun_resumes(qbo, landing_root):
    connection = qbo_connection(qbo, max_attempts=2)
    sync_entity(connection, "deposits", landing_root=landing_root)
    state = SyncState(landing_root)
    cursor = state.cursor(CONNECTION, "quickbooks", "deposits")
    qbo.world.advance(timedelta(days=1), seed=3)

    qbo.faults.add(FaultRule(path="^/query", kind="status", code=500, skip=3, times=None))
    with pytest.raises(ApiError) as error:
        sync_entity(connection, "deposits", landing_root=landing_root, mode="full")
    assert f"quickbooks[qbo_main] GET {QUERY_PATH}" in str(error.value)
    assert "HTTP 500" in str(error.value)
    assert state.cursor(CONNECTION, "quickbooks", "deposits") == cursor
    failed = [r for r in state.runs(CONNECTION) if r["status"] == "failed"]
    assert len(failed) == 1 and json.loads(failed[0]["resume_token"])["position"] > 1
    landed_before = landed_count(landing_root, "quickbooks", "deposits")

    qbo.faults.clear()
    result = sync_entity(connection, "deposits", landing_root=landing_root, mode="full")
    assert result.resumed and result.load_id == failed[0]["load_id"]
    assert state.cursor(CONNECTION, "quickbooks", "deposits") > cursor
    assert latest(landing_root, "deposits") == qbo.objects("deposits")
    # Resumed one page behind the checkpoint (offsets can shift): at most one page re-read.
    resumed_rows = landed_count(landing_root, "quickbooks", "deposits") - landed_before
    total = len(qbo.objects("deposits"))
    assert total <= failed[0]["rows"] + resumed_rows <= total + connection.page_size


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(path="^/query", kind="status", code=429, retry_after=1),
        FaultRule(path="^/query", kind="status", code=429),
        FaultRule(path="^/query", kind="status", code=503),
        FaultRule(path="^/query", kind="status", code=502, skip=1),
        FaultRule(path="^/query", kind="slow", delay=3.0, skip=1),
        FaultRule(path="^/query", kind="truncate", skip=1),
        FaultRule(path="^/query", kind="non_json"),
        FaultRule(path="^/query", kind="shift", rows=7, skip=1),
        FaultRule(path="^/oauth2/v1/tokens/bearer", kind="status", code=503),
    ],
    ids=["429-retry-after", "429-bare", "503", "502", "slow", "truncated", "html",
         "shifted-pages", "token-endpoint-503"],
)  # fmt: skip
def test_transient_faults_are_survived_with_identical_results(qbo, landing_root, rule):
    qbo.faults.add(rule)
    connection = qbo_connection(qbo, read_timeout_s=1.0)
    result = sync_entity(connection, "deposits", landing_root=landing_root)
    assert result.quarantined == 0
    assert latest(landing_root, "deposits") == qbo.objects("deposits")
    assert rule.spent or rule.times is None, "the fault never fired"


def test_server_throttling_with_an_xml_body_is_retried(landing_root, monkeypatch):
    """QBO's 429 carries XML even for JSON requests; the status alone decides the retry."""
    settings = {"requests_per_minute": 120.0, "throttle_burst": 3.0}
    with serve_quickbooks(make_world(), monkeypatch, **settings) as sim:
        connection = qbo_connection(sim, max_attempts=8)
        result = sync_entity(connection, "deposits", landing_root=landing_root)
        statuses = {s["status"] for s in sim.stats.snapshot() if s["path"] == "/query"}
        assert statuses == {200, 429}
        assert result.rows == len(sim.objects("deposits"))


def test_persistent_failure_names_source_and_endpoint_and_moves_no_cursor(qbo, landing_root):
    connection = qbo_connection(qbo, max_attempts=2)
    qbo.faults.add(FaultRule(path="^/query", kind="status", code=503, times=None))
    with pytest.raises(ApiError, match=rf"quickbooks\[qbo_main\] GET {QUERY_PATH}: gave up"):
        sync_entity(connection, "journal_entries", landing_root=landing_root)
    assert SyncState(landing_root).cursor(CONNECTION, "quickbooks", "journal_entries") is None


def test_bad_records_are_quarantined_and_logs_carry_no_secrets(qbo, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    qbo.faults.add(FaultRule(path="^/query", kind="corrupt", record_field="TotalAmt", value="1.5"))
    connection = qbo_connection(qbo)
    result = sync_entity(connection, "deposits", landing_root=landing_root)
    assert result.quarantined == 1
    assert result.quarantine_reasons == {"TotalAmt: expected a JSON number": 1}
    qbo.tokens.expire_access_tokens()
    sync_entity(connection, "classes", landing_root=landing_root)
    store = TokenStore.for_connection(landing_root, CONNECTION).load()
    text = caplog.text
    assert "refreshed" in text
    for secret in (CLIENT[1], SEED_TOKEN, store["refresh_token"], store["access_token"]):
        assert secret not in text
