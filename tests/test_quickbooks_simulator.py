"""The QuickBooks simulator speaks the contract over loopback, and its books follow the payouts."""

from __future__ import annotations

from datetime import timedelta

import httpx
import polars as pl
import pytest

from simulators.faults import FaultRule
from simulators.quickbooks.app import QuickBooksSimSettings, create_app, parse_query
from simulators.quickbooks.data import QuickBooksDataSettings, derive
from simulators.server import serve_in_thread
from simulators.stripe.data import derive as derive_processor
from tests.test_stripe_simulator import BUSY, make_world

CLIENT = ("qb-client", "qb-secret")
SEED_TOKEN = "RT1-seed"
REALM = "9130350000000001"
DATA = QuickBooksDataSettings(stripe=BUSY)


def sim_settings(**overrides) -> QuickBooksSimSettings:
    defaults = {
        "realm_id": REALM,
        "client_id": CLIENT[0],
        "client_secret": CLIENT[1],
        "initial_refresh_token": SEED_TOKEN,
        "requests_per_minute": None,
        "data": DATA,
    }
    return QuickBooksSimSettings(**{**defaults, **overrides})


def refresh(url: str, token: str, auth=CLIENT) -> httpx.Response:
    return httpx.post(
        f"{url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=auth,
    )


@pytest.fixture(scope="module")
def served():
    world = make_world()
    app = create_app(world, sim_settings())
    with serve_in_thread(app) as server:
        token = refresh(server.url, SEED_TOKEN).json()["access_token"]
        client = httpx.Client(
            base_url=f"{server.url}/v3/company/{REALM}",
            headers={"Authorization": f"Bearer {token}"},
            params={"minorversion": 75},
        )
        yield world, app, client, server.url
        client.close()


def query(client: httpx.Client, text: str) -> dict:
    response = client.get("/query", params={"query": text})
    assert response.status_code == 200, response.text
    return response.json()


def test_refresh_tokens_rotate_and_the_old_one_dies():
    world = make_world(persons=40)
    with serve_in_thread(create_app(world, sim_settings(access_token_max_uses=2))) as server:
        first = refresh(server.url, SEED_TOKEN)
        assert first.status_code == 200
        body = first.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert body["refresh_token"] != SEED_TOKEN
        stale = refresh(server.url, SEED_TOKEN)
        assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
        assert refresh(server.url, body["refresh_token"], auth=("qb-client", "nope")).json() == {
            "error": "invalid_client"
        }
        assert refresh(server.url, body["refresh_token"]).status_code == 200

        api = f"{server.url}/v3/company/{REALM}/query"
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        params = {"query": "select * from Class"}
        assert [httpx.get(api, params=params, headers=headers).status_code for _ in range(3)] == [
            200,
            200,
            401,
        ]
        expired = httpx.get(api, params=params, headers=headers).json()
        assert expired["Fault"]["Error"][0]["code"] == "3200"
        assert expired["Fault"]["type"] == "AUTHENTICATION"


def test_query_language(served):
    _, _, client, _ = served
    deposits = query(client, "select * from Deposit maxresults 1000")["QueryResponse"]["Deposit"]
    assert len(deposits) > 20
    ids = [int(d["Id"]) for d in deposits]
    assert ids == sorted(ids)  # Id order unless told otherwise
    page = query(client, "SELECT * FROM Deposit ORDER BY Id STARTPOSITION 3 MAXRESULTS 2")
    assert page["QueryResponse"]["startPosition"] == 3 and page["QueryResponse"]["maxResults"] == 2
    assert [d["Id"] for d in page["QueryResponse"]["Deposit"]] == [str(i) for i in ids[2:4]]
    assert "time" in page
    since = deposits[len(deposits) // 2]["MetaData"]["LastUpdatedTime"]
    changed = query(
        client,
        f"select * from Deposit where MetaData.LastUpdatedTime >= '{since}' maxresults 1000",
    )["QueryResponse"]["Deposit"]
    assert 0 < len(changed) < len(deposits)
    counted = query(client, "select count(*) from Deposit")["QueryResponse"]["totalCount"]
    assert counted == len(deposits)
    assert query(client, "select * from Deposit startposition 5000")["QueryResponse"] == {}
    newest = query(client, "select * from Deposit orderby TxnDate desc maxresults 1")
    assert newest["QueryResponse"]["Deposit"][0]["TxnDate"] == max(d["TxnDate"] for d in deposits)
    # Name lists answer only active entries unless the query mentions Active.
    active = query(client, "select * from Account")["QueryResponse"]["Account"]
    every = query(client, "select * from Account where Active in (true, false)")
    assert len(every["QueryResponse"]["Account"]) == len(active) + 1
    named = query(client, "select * from Account where Name like 'Merchant%'")
    assert [a["Name"] for a in named["QueryResponse"]["Account"]] == ["Merchant Fees"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("select * from Deposit where PrivateNote = 'po_1'", "4001"),  # not queryable
        ("select * from Invoice", "4000"),
        ("select Id from Deposit", "4000"),  # no projections
        ("select * from Deposit where TxnDate = '2026-10-01' or Id = '1'", "4000"),
        ("select * from Deposit maxresults 1001", "4001"),
    ],
)
def test_bad_queries_answer_a_fault(served, text, code):
    _, _, client, _ = served
    response = client.get("/query", params={"query": text})
    assert response.status_code == 400
    assert response.json()["Fault"]["Error"][0]["code"] == code


def test_query_parser_reads_strings_with_escapes():
    parsed = parse_query(r"select * from Account where Name = 'O\'Brien' and Active = false")
    assert [(c.field, c.op, c.values) for c in parsed.where] == [
        ("Name", "=", ["O'Brien"]),
        ("Active", "=", [False]),
    ]


def test_change_data_capture(served):
    world, _, client, _ = served
    with world.lock:
        since = (world.now_utc - timedelta(days=10)).isoformat()
    answer = client.get("/cdc", params={"entities": "Deposit,JournalEntry", "changedSince": since})
    parts = answer.json()["CDCResponse"][0]["QueryResponse"]
    deposits = parts[0].get("Deposit", [])
    assert deposits and all(d["MetaData"]["LastUpdatedTime"] >= since[:10] for d in deposits)
    old = (world.now_utc - timedelta(days=31)).isoformat()
    too_old = client.get("/cdc", params={"entities": "Deposit", "changedSince": old})
    assert too_old.status_code == 400


def test_throttling_answers_xml_3001_and_scripted_faults_apply():
    world = make_world(persons=40)
    settings = sim_settings(requests_per_minute=60.0, throttle_burst=2.0, throttle_retry_after=2)
    app = create_app(world, settings)
    with serve_in_thread(app) as server:
        token = refresh(server.url, SEED_TOKEN).json()["access_token"]
        client = httpx.Client(
            base_url=f"{server.url}/v3/company/{REALM}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        answers = [client.get("/query", params={"query": "select * from Class"}) for _ in range(4)]
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled and answers[0].status_code == 200
        assert throttled[0].headers["content-type"].startswith("application/xml")
        assert '<Error code="3001">' in throttled[0].text
        assert throttled[0].headers["Retry-After"] == "2"
        app.state.sim.throttle = type(app.state.sim.throttle)(None, 1)
        app.state.faults.add(FaultRule(path="^/query", kind="shift", rows=2))
        shifted = client.get("/query", params={"query": "select * from Deposit startposition 5"})
        assert shifted.json()["QueryResponse"]["startPosition"] == 3
        wrong_realm = client.get(f"{server.url}/v3/company/1/query", params={"query": "x"})
        assert wrong_realm.status_code == 403
        client.close()


def test_a_deposit_per_paid_payout_with_gross_fee_and_net(served, tmp_path):
    world, _, client, url = served
    httpx.post(f"{url}/_sim/export", json={"dir": str(tmp_path)}).raise_for_status()
    deposits = pl.read_parquet(tmp_path / "quickbooks_deposits.parquet")
    lines = pl.read_parquet(tmp_path / "quickbooks_deposit_lines.parquet")
    processor = derive_processor(world, BUSY)
    paid = {p.id: p.amount for p in processor.payouts if processor.payout_status(p) == "paid"}
    booked = dict(zip(deposits["payout_id"], deposits["TotalAmt"], strict=True))
    assert set(booked) <= set(paid) and len(paid) - len(booked) <= 1  # the newest may be unbooked
    assert all(round(booked[k] * 100) == paid[k] for k in booked)
    sums = lines.group_by("TxnId").agg(pl.col("Amount").sum())
    totals = deposits.join(sums, left_on="Id", right_on="TxnId")
    assert ((totals["TotalAmt"] - totals["Amount"]).abs() < 0.005).all()
    fees = lines.filter(pl.col("DepositLineDetail.AccountRef.name") == "Merchant Fees")
    gross = lines.filter(pl.col("Description").str.starts_with("Card payments"))
    assert set(gross["TxnId"]) <= set(fees["TxnId"]) and (fees["Amount"] < 0).all()
    first = query(client, "select * from Deposit maxresults 1")["QueryResponse"]["Deposit"][0]
    assert first["PrivateNote"].startswith("Stripe payout po_")
    journals = query(client, "select * from JournalEntry maxresults 1000")["QueryResponse"]
    for entry in journals["JournalEntry"]:
        sides = {"Debit": 0.0, "Credit": 0.0}
        for line in entry["Line"]:
            sides[line["JournalEntryLineDetail"]["PostingType"]] += line["Amount"]
        assert abs(sides["Debit"] - sides["Credit"]) < 0.005


def test_books_stay_stable_as_the_world_advances():
    world = make_world(persons=80)
    before = derive(world, DATA)
    deposits = {t.id: before.deposit_object(t) for t in before.deposits}
    world.advance(timedelta(days=4), seed=3)
    after = derive(world, DATA)
    now = {t.id: after.deposit_object(t) for t in after.deposits}
    assert set(deposits) < set(now)
    for key, deposit in deposits.items():
        if deposit != now[key]:  # only a bookkeeper's review edits a posted deposit
            assert now[key]["SyncToken"] == "1" and deposit["SyncToken"] == "0"
            assert now[key]["Line"] == deposit["Line"]
            assert now[key]["MetaData"]["LastUpdatedTime"] > deposit["MetaData"]["LastUpdatedTime"]
