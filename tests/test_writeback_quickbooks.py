"""QuickBooks writeback end to end: payouts booked as Deposits exactly once, over loopback HTTP.

The simulator's books skip every payout (``missing_deposit_rate=1``), so each planned payout is
one the writer must book. Payloads are built here the way the planner does (gross per payment
type and location, the fee as its own negative line), planned into a real outbox SQLite file and
delivered with ``writeback.deliver.deliver``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from chairside.config import Organisation
from extract.quickbooks.auth import TokenStore
from extract.quickbooks.connector import sync_entity
from simulators.faults import FaultRule
from simulators.quickbooks.data import (
    ACCOUNTS,
    DISPUTED,
    INCOME_ACCOUNT,
    REFUNDS,
    QuickBooksDataSettings,
    derive,
    expanded,
)
from simulators.stripe.data import utc_day
from tests.test_quickbooks_extract import (
    CONNECTION,
    QuickBooks,
    latest,
    qbo_connection,
    serve_quickbooks,
)
from tests.test_quickbooks_simulator import CLIENT, REALM, SEED_TOKEN
from tests.test_stripe_simulator import BUSY, make_world
from writeback.deliver import deliver
from writeback.destinations import destination_for
from writeback.outbox import Outbox, Row, Write
from writeback.quickbooks import QuickBooksDestination, config_mapping
from writeback.writes import DepositLine, QboDeposit, marker

UNBOOKED = QuickBooksDataSettings(stripe=BUSY, missing_deposit_rate=1.0)
ACCOUNT_NAMES = {a[0]: a[1] for a in ACCOUNTS}
CLASSIFICATION = {a[1]: a[4] for a in ACCOUNTS}
FEES = "Merchant Fees"
COMPANY = f"/v3/company/{REALM}"


@dataclass
class Planned:
    """One payout as the planner books it, and what the books must show afterwards."""

    write: Write
    net: Decimal
    fee: Decimal
    by_account: dict[str, Decimal]  # the lines' sum per account (gross, refunds, fee, ...)


def _cents(value: int) -> Decimal:
    return Decimal(value) / 100


def plan_payouts(sim: QuickBooks, n: int, *, department: str | None = None) -> list[Planned]:
    """The first ``n`` payouts the books skipped, as qbo_deposit writes."""
    books = derive(sim.world, UNBOOKED)
    offices = dict(books.locations)
    out = []
    for payout_id in books.unbooked:
        payout = books.processor.payouts_by_id[payout_id]
        amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        fee = Decimal(0)
        for t in expanded(payout, books.processor):
            fee += _cents(t.fee)
            if t.reporting_category == "charge":
                account = INCOME_ACCOUNT[t.charge.payment_type]
            else:
                account = REFUNDS if t.reporting_category == "refund" else DISPUTED
            amounts[(ACCOUNT_NAMES[account], offices[t.charge.location])] += _cents(t.amount)
        lines = [
            DepositLine(amount=a, account=acct, class_name=klass, description="Card payments")
            for (acct, klass), a in sorted(amounts.items())
            if a
        ]
        if fee:
            lines.append(DepositLine(amount=-fee, account=FEES, description="Processor fees"))
        net = sum((line.amount for line in lines), Decimal(0))
        if net <= 0:
            continue
        key = Write("qbo_deposit", CONNECTION, payout_id, {}, datetime.now(UTC)).key
        payload = QboDeposit(
            payout_id=payout_id,
            txn_date=utc_day(payout.arrival_date),
            bank_account="Checking",
            department=department,
            doc_number=payout_id[3:24],
            private_note=f"Stripe payout {payout_id} {marker(key, payout_id)}",
            net=net,
            lines=lines,
        )
        by_account: dict[str, Decimal] = defaultdict(Decimal)
        for line in lines:
            by_account[line.account] += line.amount
        write = Write(
            "qbo_deposit", CONNECTION, payout_id, payload.model_dump(mode="json"), datetime.now(UTC)
        )
        out.append(Planned(write, net, fee, dict(by_account)))
        if len(out) == n:
            return out
    raise AssertionError(f"the world has fewer than {n} unbooked payouts")


@contextmanager
def served(monkeypatch, **settings) -> Iterator[QuickBooks]:
    with serve_quickbooks(make_world(), monkeypatch, data=UNBOOKED, **settings) as sim:
        yield sim


def destination(sim: QuickBooks, landing_root: Path, **settings) -> QuickBooksDestination:
    connection_settings = settings.pop("connection", {})
    # Unpaced requests (a test needs no realistic rate); batches paced as in production, under
    # the simulator's 40 batch requests a minute.
    settings = {"requests_per_minute": 60_000.0, **settings}
    return QuickBooksDestination(
        qbo_connection(sim, **connection_settings), landing_root=landing_root, **settings
    )


def written(sim: QuickBooks) -> dict:
    return httpx.get(f"{sim.url}/_sim/written").json()


def ledger(sim: QuickBooks, source: str = "written") -> dict[str, dict]:
    body = httpx.get(f"{sim.url}/_sim/ledger", params={"source": source}).json()
    return {a["Name"]: a for a in body["accounts"]}


def requests(sim: QuickBooks, path: str) -> Counter[int]:
    return Counter(
        {s["status"]: s["count"] for s in sim.stats.snapshot() if s["path"] == f"/{path}"}
    )


def deposits_per_key(sim: QuickBooks, rows: list[Row]) -> dict[str, list[str]]:
    """Every written deposit carrying each row's key (exactly one each = exactly once)."""
    deposits = written(sim)["deposits"]
    return {r.key: [d["Id"] for d in deposits if r.key in (d["PrivateNote"] or "")] for r in rows}


def assert_exactly_once(sim: QuickBooks, outbox: Outbox) -> None:
    rows = outbox.rows()
    per_key = deposits_per_key(sim, rows)
    assert all(r.state == "done" for r in rows), Counter(r.state for r in rows)
    assert {k: len(ids) for k, ids in per_key.items()} == {r.key: 1 for r in rows}
    assert {r.key: r.remote_id for r in rows} == {k: ids[0] for k, ids in per_key.items()}
    assert len(written(sim)["deposits"]) == len(rows)


# --- the books ------------------------------------------------------------------------------


def test_each_planned_payout_becomes_one_balanced_deposit(monkeypatch, landing_root, tmp_path):
    with served(monkeypatch) as sim:
        planned = plan_payouts(sim, 12)
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in planned)
        with destination(sim, landing_root) as qbo:
            report = deliver(outbox, qbo)
        assert (report.sent, report.found, report.failed, report.unknown) == (12, 0, [], [])
        assert_exactly_once(sim, outbox)

        by_key = {d["requestid"]: d for d in written(sim)["deposits"]}
        for p in planned:
            deposit = by_key[p.write.key]  # created by the request carrying the row's key
            assert deposit["requestid_seen"] == 1
            assert Decimal(str(deposit["TotalAmt"])) == p.net
            assert deposit["DocNumber"] == p.write.payload["doc_number"]
            assert p.write.source_ref in deposit["PrivateNote"]

        books = ledger(sim)
        assert Decimal(str(books["Checking"]["normal_balance"])) == sum(p.net for p in planned)
        assert Decimal(str(books[FEES]["normal_balance"])) == sum(p.fee for p in planned)
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for p in planned:
            for account, amount in p.by_account.items():
                totals[account] += amount
        income = {ACCOUNT_NAMES[a] for a in INCOME_ACCOUNT.values()}
        assert income & set(totals)
        for account, amount in totals.items():
            # Each line credits its account: income grows by its gross; an asset (clearing,
            # disputed) or expense account moves the other way, so the negative fee line adds
            # the fee to Merchant Fees.
            revenue = CLASSIFICATION[account] == "Revenue"
            expected = amount if revenue else -amount
            assert Decimal(str(books[account]["normal_balance"])) == expected, account
        assert sum(Decimal(str(a["balance"])) for a in books.values()) == 0  # debits = credits

        # A second run has nothing to do; the read connector extracts what was written.
        with destination(sim, landing_root) as qbo:
            assert deliver(outbox, qbo).sent == 0
        sync_entity(qbo_connection(sim), "deposits", landing_root=landing_root, mode="full")
        landed = latest(landing_root, "deposits")
        assert {r.remote_id for r in outbox.rows()} <= set(landed)
        one = landed[outbox.rows()[0].remote_id]
        assert one["DepositToAccountRef"]["name"] == "Checking"
        assert any(line["Amount"] < 0 for line in one["Line"])  # the fee line


@pytest.mark.parametrize(
    ("replay", "batch_size"), [(True, 1), (False, 1), (False, 5)], ids=["replay", "no-replay",
                                                                        "no-replay-batch"]
)  # fmt: skip
def test_a_lost_response_is_settled_by_the_lookup_not_by_writing_again(
    monkeypatch, landing_root, tmp_path, replay, batch_size
):
    """QuickBooks commits the write, then the answer is lost (504): the next run finds the
    deposit by the key in PrivateNote, whether or not QuickBooks replays requestids."""
    with served(monkeypatch, requestid_replay=replay) as sim:
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in plan_payouts(sim, 8))
        path = "^/batch$" if batch_size > 1 else "^/deposit$"
        sim.faults.add(FaultRule(path=path, kind="lost_response", method="POST"))
        with destination(sim, landing_root, batch_size=batch_size) as qbo:
            first = deliver(outbox, qbo)
        lost = batch_size if batch_size > 1 else 1
        assert len(first.unknown) == lost and first.sent == 8 - lost
        assert len(written(sim)["deposits"]) == 8  # the lost ones were committed
        queries = requests(sim, "query")[200]

        with destination(sim, landing_root, batch_size=batch_size) as qbo:
            second = deliver(outbox, qbo)
        assert (second.found, second.sent, second.unknown) == (lost, 0, [])
        assert requests(sim, "query")[200] > queries  # looked up, not sent again
        assert_exactly_once(sim, outbox)
        assert all(e["event"] != "failed" for r in outbox.rows() for e in outbox.events(r.key))


def test_requestid_replay_is_a_simulator_knob(monkeypatch, landing_root, tmp_path):
    """With replay on, a repeated requestid returns the original answer and writes nothing;
    with it off (as some reports say of QBO), the same request writes a second deposit."""
    for replay, expected in ((True, 1), (False, 2)):
        with served(monkeypatch, requestid_replay=replay) as sim:
            outbox = Outbox(tmp_path / f"outbox-{replay}.sqlite")
            outbox.plan(p.write for p in plan_payouts(sim, 1))
            with destination(sim, landing_root / str(replay)) as qbo:
                row = outbox.rows()[0]
                body, problem = qbo.deposit_body(row)
                assert problem is None
                answers = [
                    qbo.client.write_json(
                        "POST", f"{COMPANY}/deposit", json=body, params={"requestid": row.key}
                    ).json()["Deposit"]["Id"]
                    for _ in range(2)
                ]
            listed = written(sim)
            assert len(listed["deposits"]) == expected
            assert len(set(answers)) == expected
            assert listed["requestids"] == {row.key: 2}


# --- refusals -------------------------------------------------------------------------------


def test_batch_mode_fails_only_the_refused_item(monkeypatch, landing_root, tmp_path):
    """A batch is not transactional: the item QuickBooks refuses (closed period, 6210) fails
    with QuickBooks' code and message, the rest are written. Once the period reopens, an
    operator's retry writes it, even though its first requestid was answered with a fault."""
    with served(monkeypatch) as sim:
        planned = plan_payouts(sim, 11)
        closed = min(p.write.payload["txn_date"] for p in planned)
        refused = {p.write.key for p in planned if p.write.payload["txn_date"] <= closed}
        sim.app.state.settings.book_close_date = datetime.fromisoformat(closed).date()
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in planned)
        with destination(sim, landing_root, batch_size=5) as qbo:
            report = deliver(outbox, qbo)
        assert {key for key, _ in report.failed} == refused
        assert report.sent == 11 - len(refused)
        for key in refused:
            reason = outbox.get(key).last_error
            assert reason.startswith("QuickBooks 6210: Account Period Closed"), reason
        assert requests(sim, "batch") == Counter({200: 3})  # 11 rows in batches of 5
        assert requests(sim, "deposit") == Counter()
        assert written(sim)["batches"] == 3 and written(sim)["batch_items"] == 11

        sim.app.state.settings.book_close_date = None
        outbox.retry(refused, actor="ops", reason="period reopened")
        with destination(sim, landing_root, batch_size=5) as qbo:
            again = deliver(outbox, qbo)
        assert again.sent == len(refused) and not again.failed
        assert_exactly_once(sim, outbox)


def test_a_refused_row_is_written_on_retry_despite_requestid_replay(
    monkeypatch, landing_root, tmp_path
):
    """QuickBooks replays the answer to a repeated requestid, a fault included: the retry of a
    refused row must carry a new requestid, or the fixed write is refused forever."""
    with served(monkeypatch, requestid_replay=True) as sim:
        planned = plan_payouts(sim, 1)
        sim.app.state.settings.book_close_date = datetime.fromisoformat(
            planned[0].write.payload["txn_date"]
        ).date()
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in planned)
        with destination(sim, landing_root) as qbo:
            assert len(deliver(outbox, qbo).failed) == 1
        sim.app.state.settings.book_close_date = None
        outbox.retry([planned[0].write.key], actor="ops")
        with destination(sim, landing_root) as qbo:
            assert deliver(outbox, qbo).sent == 1
        assert_exactly_once(sim, outbox)
        assert written(sim)["deposits"][0]["requestid"] == f"{planned[0].write.key}-1"


def test_validate_mapping_names_missing_and_wrong_accounts(monkeypatch, landing_root, tmp_path):
    with served(monkeypatch) as sim, destination(sim, landing_root) as qbo:
        problems = qbo.validate_mapping(
            {
                "writeback.quickbooks.bank_account": ("bank_account", "Merchant Fees"),
                "writeback.quickbooks.accounts.fees": ("account", "Merchant fees"),
                "writeback.quickbooks.accounts.old": ("account", "Old Processor Fees (deleted)"),
                "writeback.quickbooks.accounts.terminal": (
                    "account",
                    "Patient Card Payments - Terminal",
                ),
                "writeback.quickbooks.clearing": ("bank_account", "Card Clearing"),
                "locations.od_riverside.class": ("class", "Riverside Dental"),
                "locations.od_riverside.department": ("department", "Riverside Dentl"),
            }
        )
        assert problems == [
            "writeback.quickbooks.bank_account: 'Merchant Fees' is an Expense account; a "
            "deposit goes to a Bank or Other Current Asset account",
            "writeback.quickbooks.accounts.fees: no account named 'Merchant fees' in the "
            "company (closest: 'Merchant Fees')",
            "writeback.quickbooks.accounts.old: the account 'Old Processor Fees (deleted)' is "
            "inactive in the company",
            "locations.od_riverside.department: no department named 'Riverside Dentl' in the "
            "company (closest: 'Riverside Dental')",
        ]

        # A row whose names do not resolve fails without a request; the others are written.
        planned = plan_payouts(sim, 3)
        bad = planned[0].write
        payload = dict(bad.payload, bank_account="Merchant Fees")
        payload["lines"] = [dict(line) for line in payload["lines"]]
        payload["lines"][-1]["account"] = "Merchant fees"
        planned[0].write = replace(bad, payload=payload)
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in planned)
        report = deliver(outbox, qbo)
        assert report.sent == 2
        assert report.failed == [
            (
                bad.key,
                "bank_account: 'Merchant Fees' is an Expense account; a deposit goes to a Bank "
                f"or Other Current Asset account; lines[{len(payload['lines']) - 1}].account: "
                "no account named 'Merchant fees' in the company (closest: 'Merchant Fees')",
            )
        ]
        assert requests(sim, "deposit") == Counter({200: 2})


def test_the_org_config_builds_the_destination_and_its_names_are_checked(monkeypatch, landing_root):
    with served(monkeypatch) as sim:
        connection = qbo_connection(sim).model_dump()
        org = Organisation.model_validate(
            {
                "id": "test_group",
                "name": "Test Group",
                "connections": [connection],
                "locations": [{"id": "riverside", "name": "Riverside", "connection": CONNECTION}],
                "writeback": {
                    "quickbooks": {
                        "enabled": True,
                        "connection": CONNECTION,
                        "payouts_from": "2026-01-01",
                        "fee_account": "Merchant fees",
                        "refund_account": "Patient Refunds",
                        "default_income_account": "Patient Card Payments - Terminal",
                        "income_accounts": {"patient_portal": "Card Clearing"},
                        "classes": {"riverside": "Riverside Dental"},
                        "departments": {"riverside": "Riverside"},
                        "batch_size": 10,
                    }
                },
            }
        )
        with destination_for(org, CONNECTION, landing_root) as qbo:
            assert isinstance(qbo, QuickBooksDestination) and qbo.batch_size == 10
            assert qbo.validate_mapping(config_mapping(org.writeback.quickbooks)) == [
                "writeback.quickbooks.fee_account: no account named 'Merchant fees' in the "
                "company (closest: 'Merchant Fees')",
                "writeback.quickbooks.departments['riverside']: no department named 'Riverside' "
                "in the company (closest: 'Riverside Dental')",
            ]


# --- limits and tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3])
def test_throttling_is_waited_out_and_every_row_is_written_once(
    monkeypatch, landing_root, tmp_path, batch_size
):
    """A tiny limit and no client pacing: QuickBooks answers 429 with an XML 3001 body; the
    writer reads it, waits and sends again (a throttled request was not executed)."""
    limits = (
        {"requests_per_minute": 120.0, "throttle_burst": 3.0}
        if batch_size == 1
        else {"batch_requests_per_minute": 60.0, "batch_throttle_burst": 1.0}
    )
    with served(monkeypatch, **limits) as sim:
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in plan_payouts(sim, 8))
        # One attempt per client call: the XML 429 reaches the writer's own throttle handling.
        with destination(
            sim,
            landing_root,
            batch_size=batch_size,
            batch_requests_per_minute=60_000.0,
            connection={"max_attempts": 1},
        ) as qbo:
            report = deliver(outbox, qbo)
            assert qbo.throttled > 0
        assert report.sent == 8 and not report.failed and not report.unknown
        path = "deposit" if batch_size == 1 else "batch"
        statuses = requests(sim, path)
        assert statuses[429] > 0 and statuses[200] == (8 if batch_size == 1 else 3)
        assert_exactly_once(sim, outbox)
        assert set(written(sim)["requestids"].values()) == {1}  # throttled = never executed


def test_an_access_token_expiring_mid_run_is_refreshed_and_the_rotation_persisted(
    monkeypatch, landing_root, tmp_path
):
    with served(monkeypatch, access_token_max_uses=3) as sim:
        planned = plan_payouts(sim, 12)
        outbox = Outbox(tmp_path / "outbox.sqlite")
        outbox.plan(p.write for p in planned[:6])
        with destination(sim, landing_root) as qbo:
            assert deliver(outbox, qbo).sent == 6
        assert sim.tokens.refreshes >= 3
        assert requests(sim, "deposit")[401] >= 1  # refused, refreshed, replayed
        store = TokenStore.for_connection(landing_root, CONNECTION)
        first_chain = store.load()["refresh_token"]
        assert first_chain != SEED_TOKEN

        # A new sender (new instance, new client) lives on the stored token: the seed in the
        # environment is long gone and the server has dropped every access token.
        monkeypatch.setenv("QB_REFRESH_TOKEN", "RT1-long-gone")
        sim.tokens.expire_access_tokens()
        outbox.plan(p.write for p in planned[6:])
        with destination(sim, landing_root) as qbo:
            assert deliver(outbox, qbo).sent == 6
        assert store.load()["refresh_token"] not in (first_chain, SEED_TOKEN)
        assert_exactly_once(sim, outbox)
        assert set(written(sim)["requestids"].values()) == {1}  # a 401 never executes


# --- the simulator's write side -------------------------------------------------------------


def test_the_simulator_refuses_deposits_as_quickbooks_does(monkeypatch):
    with served(monkeypatch, allow_negative_deposit_lines=True, max_batch_items=3) as sim:
        token = httpx.post(
            f"{sim.url}/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": SEED_TOKEN},
            auth=CLIENT,
        ).json()["access_token"]
        api = httpx.Client(
            base_url=f"{sim.url}{COMPANY}", headers={"Authorization": f"Bearer {token}"}
        )

        def line(amount=100.0, account="5", klass=None) -> dict:
            detail = {"AccountRef": {"value": account}} if account else {}
            if klass:
                detail["ClassRef"] = {"value": klass}
            return {"Amount": amount, "DetailType": "DepositLineDetail",
                    "DepositLineDetail": detail}  # fmt: skip

        def deposit(**fields) -> dict:
            return {"DepositToAccountRef": {"value": "1"}, "Line": [line()], **fields}

        def fault(body: dict) -> tuple[int, str, str]:
            response = api.post("/deposit", json=body)
            error = response.json()["Fault"]["Error"][0]
            return response.status_code, error["code"], error["Detail"]

        assert fault(deposit(Line=[line(account=None)]))[:2] == (400, "2020")
        assert fault(deposit(Line=[line(account="999")]))[:2] == (400, "2500")
        assert fault(deposit(Line=[line(klass="77")]))[:2] == (400, "2500")
        assert fault(deposit(Line=[line(account="14")]))[:2] == (400, "610")  # inactive
        assert fault(deposit(DepartmentRef={"value": "9"}))[:2] == (400, "2500")
        for bank in ({"value": "12"}, None):  # an Expense account, or none
            code = fault(deposit(DepositToAccountRef=bank))
            assert code[1] == "6000" and "Select a bank account" in code[2]
        assert fault(deposit(DocNumber="x" * 22))[1] == "2050"
        assert "transaction amount" in fault(deposit(Line=[]))[2]
        assert "transaction amount" in fault(deposit(Line=[line(10.0), line(-10.0, "12")]))[2]

        created = api.post(
            "/deposit",
            json=deposit(Line=[line(100.0, "5", "1"), line(-3.1, "12")],
                         CashBack={"AccountRef": {"value": "3"}, "Amount": 6.9}),
        )  # fmt: skip
        made = created.json()["Deposit"]
        assert created.status_code == 200 and made["SyncToken"] == "0"
        assert made["TotalAmt"] == 90.0 and made["Line"][0]["DepositLineDetail"]["ClassRef"] == {
            "value": "1",
            "name": "Riverside Dental",
        }
        assert api.get(f"/deposit/{made['Id']}").json()["Deposit"] == made

        stale = dict(made, SyncToken="7", PrivateNote="edited")
        assert fault(stale)[1] == "5010"
        edited = api.post("/deposit", json={"Id": made["Id"], "SyncToken": "0", "sparse": True,
                                            "PrivateNote": "edited"}).json()["Deposit"]  # fmt: skip
        assert edited["SyncToken"] == "1" and edited["PrivateNote"] == "edited"
        assert edited["Line"] == made["Line"]  # a sparse update without Line keeps the lines

        # Batches: items independent, a Query item answered inline, at most max_batch_items.
        answer = api.post("/batch", json={"BatchItemRequest": [
            {"bId": "a", "operation": "create", "Deposit": deposit()},
            {"bId": "b", "operation": "create", "Deposit": deposit(Line=[line(account="999")])},
            {"bId": "c", "Query": f"select * from Deposit where Id = '{made['Id']}'"},
        ]}).json()["BatchItemResponse"]  # fmt: skip
        assert [sorted(set(item) - {"bId"}) for item in answer] == [
            ["Deposit"], ["Fault"], ["QueryResponse"]
        ]  # fmt: skip
        assert answer[2]["QueryResponse"]["Deposit"][0]["SyncToken"] == "1"
        too_many = api.post("/batch", json={"BatchItemRequest": [
            {"bId": str(n), "Query": "select * from Class"} for n in range(4)
        ]})  # fmt: skip
        assert (
            too_many.status_code == 400 and too_many.json()["Fault"]["Error"][0]["code"] == "6000"
        )

        # Written deposits are books like the derived ones: /cdc and account balances see them.
        cdc = api.get("/cdc", params={"entities": "Deposit", "changedSince": made["MetaData"][
            "CreateTime"]}).json()["CDCResponse"][0]["QueryResponse"][0]["Deposit"]  # fmt: skip
        assert {d["Id"] for d in cdc} == {made["Id"], answer[0]["Deposit"]["Id"]}
        accounts = api.get("/query", params={"query": "select * from Account where Id = '3'"})
        assert accounts.json()["QueryResponse"]["Account"][0]["CurrentBalance"] == 6.9
        api.close()
