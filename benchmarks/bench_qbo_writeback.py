"""QuickBooks writeback throughput against the simulator's real limits, beside a naive peer.

QuickBooks Online allows 500 requests a minute per company (batches included) and 40 batch
requests a minute; the simulator enforces both (token buckets, XML 429 bodies). Three runs, each
against a fresh simulator, each for about one window (default 60 s):

- chairside, single: ``writeback.deliver`` + ``QuickBooksDestination`` (one POST /deposit per
  payout, paced at 95% of 500/minute);
- chairside, batch: the same with 30 deposits per POST /batch, paced at 95% of 40 batches/minute;
- peer: the common hand-rolled sender (as with python-quickbooks): a POST /deposit per payout,
  no pacing, a 429 resent at once, for the same window.

Throughput is reported as a share of the limit that binds (requests for single creates, batch
requests for batches); the target is >= 90% with no 429s. The outbox rows and the simulator's
written deposits are compared afterwards: every row done, one deposit each.

Run: ``.venv/bin/python benchmarks/bench_qbo_writeback.py [window_seconds]`` (default 60).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chairside.config import Organisation
from simulators.generate import generate_world
from simulators.quickbooks.app import QuickBooksSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.world import World, WorldSpec
from writeback.deliver import deliver
from writeback.outbox import Outbox, Write
from writeback.quickbooks import QuickBooksDestination
from writeback.writes import DepositLine, QboDeposit, marker

REALM = "9130350000000042"
CLIENT = ("bench-client", "bench-secret")
SEED = "RT1-bench-seed"
CONNECTION = "qbo_bench"
BATCH = 30


@dataclass
class Result:
    sender: str
    mode: str
    seconds: float
    requests: int  # every API request the simulator saw (429s included)
    batches: int
    deposits: int
    throttled: int
    exactly_once: bool | None  # None: the sender keeps no record to check against


def main(window_s: float) -> None:
    world = generate_world(WorldSpec(seed=7, n_persons=60))
    os.environ |= {"QB_CLIENT_ID": CLIENT[0], "QB_CLIENT_SECRET": CLIENT[1]}
    settings = _settings()
    per_minute = settings.requests_per_minute
    batches_per_minute = settings.batch_requests_per_minute
    single_rows = int(0.95 * per_minute * window_s / 60) - 3  # 3 chart queries come first
    batch_rows = int(0.95 * batches_per_minute * window_s / 60) * BATCH
    results = [
        _ours(world, "single", 1, single_rows),
        _ours(world, "batch", BATCH, batch_rows),
        _peer(world, window_s),
    ]
    _table(results, per_minute, batches_per_minute, window_s)


def _settings() -> QuickBooksSimSettings:
    """QBO's real limits (the simulator's defaults): 500/min, 10 concurrent, 40 batches/min."""
    return QuickBooksSimSettings(
        realm_id=REALM,
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        initial_refresh_token=SEED,
    )


def _ours(world: World, mode: str, batch_size: int, rows: int) -> Result:
    os.environ["QB_REFRESH_TOKEN"] = SEED
    app = create_app(world, _settings())
    with serve_in_thread(app) as server, tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "outbox.sqlite")
        outbox.plan(_writes(world, rows, mode))
        destination = QuickBooksDestination(
            _connection(server.url), landing_root=Path(tmp) / "landing", batch_size=batch_size
        )
        started = time.perf_counter()
        with destination:
            report = deliver(outbox, destination)
        seconds = time.perf_counter() - started
        written = httpx.get(f"{server.url}/_sim/written").json()
        done = {r.remote_id for r in outbox.rows(state="done")}
        once = (
            report.sent == rows
            and len(done) == rows
            and {d["Id"] for d in written["deposits"]} == done
        )
        return _result(app, "chairside", mode, seconds, written["deposits"], once)


def _peer(world: World, window_s: float) -> Result:
    """POST /deposit in a loop for the window, no pacing, a 429 resent at once."""
    app = create_app(world, _settings())
    with serve_in_thread(app) as server:
        token = httpx.post(
            f"{server.url}/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": SEED},
            auth=CLIENT,
        ).json()["access_token"]
        bodies = (_peer_body(w.payload) for w in _writes(world, 10**6, "peer"))
        client = httpx.Client(
            base_url=f"{server.url}/v3/company/{REALM}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=30,
        )
        started = time.perf_counter()
        body = next(bodies)
        while time.perf_counter() - started < window_s:
            if client.post("/deposit", json=body).status_code == 200:
                body = next(bodies)
        seconds = time.perf_counter() - started
        client.close()
        written = httpx.get(f"{server.url}/_sim/written").json()
        return _result(app, "peer (naive)", "single", seconds, written["deposits"], None)


def _result(app, sender, mode, seconds, deposits, once) -> Result:
    stats = app.state.stats.snapshot()
    api = [s for s in stats if s["path"] != "/oauth2/v1/tokens/bearer"]
    return Result(
        sender=sender,
        mode=mode,
        seconds=seconds,
        requests=sum(s["count"] for s in api),
        batches=sum(s["count"] for s in api if s["path"] == "/batch" and s["status"] == 200),
        deposits=len(deposits),
        throttled=sum(s["count"] for s in api if s["status"] == 429),
        exactly_once=once,
    )


def _writes(world: World, n: int, tag: str):
    """Synthetic payouts: gross to a card income account with a Class, the fee negative."""
    day = world.spec.now_utc.date()
    for i in range(n):
        payout_id = f"po_bench{tag[:2]}{i:016d}"
        gross = Decimal(100 + i % 900) + Decimal("0.25")
        fee = (gross * Decimal("0.029")).quantize(Decimal("0.01")) + Decimal("0.30")
        key = Write("qbo_deposit", CONNECTION, payout_id, {}, datetime.now(UTC)).key
        payload = QboDeposit(
            payout_id=payout_id,
            txn_date=day,
            bank_account="Checking",
            doc_number=payout_id[-21:],
            private_note=f"Stripe payout {payout_id} {marker(key, payout_id)}",
            net=gross - fee,
            lines=[
                DepositLine(
                    amount=gross,
                    account="Patient Card Payments - Terminal",
                    class_name=world.spec.offices[i % len(world.spec.offices)].name,
                    description="Card payments",
                ),
                DepositLine(amount=-fee, account="Merchant Fees", description="Processor fees"),
            ],
        )
        yield Write(
            "qbo_deposit", CONNECTION, payout_id, payload.model_dump(mode="json"), datetime.now(UTC)
        )


def _peer_body(payload: dict) -> dict:
    """The peer hard-codes the chart's Ids, as hand-rolled senders do."""
    return {
        "TxnDate": payload["txn_date"],
        "DocNumber": payload["doc_number"],
        "PrivateNote": payload["private_note"],
        "DepositToAccountRef": {"value": "1"},
        "Line": [
            {
                "Amount": float(line["amount"]),
                "DetailType": "DepositLineDetail",
                "DepositLineDetail": {"AccountRef": {"value": "5" if n == 0 else "12"}},
            }
            for n, line in enumerate(payload["lines"])
        ],
    }


def _connection(url: str):
    org = Organisation.model_validate(
        {
            "id": "bench",
            "name": "Bench",
            "connections": [
                {
                    "id": CONNECTION,
                    "vendor": "quickbooks",
                    "base_url": url,
                    "realm_id": REALM,
                    "token_url": f"{url}/oauth2/v1/tokens/bearer",
                    "client_id_env": "QB_CLIENT_ID",
                    "client_secret_env": "QB_CLIENT_SECRET",
                    "refresh_token_env": "QB_REFRESH_TOKEN",
                    "timezone": "America/New_York",
                }
            ],
        }
    )
    return org.connection(CONNECTION)


def _table(results: list[Result], per_minute: float, batches: float, window_s: float) -> None:
    table = Table(title=f"QuickBooks writeback vs the simulator's limits (window {window_s:.0f} s)")
    columns = (
        "sender", "mode", "seconds", "requests", "requests/min", "binding limit",
        "share of limit", "deposits", "deposits/min", "429s", "one deposit per row",
    )  # fmt: skip
    for name in columns:
        table.add_column(name, justify="left" if name in ("sender", "mode") else "right")
    for r in results:
        minutes = r.seconds / 60
        accepted = r.requests - r.throttled
        if r.mode == "batch":
            limit, share = f"{batches:.0f} batches/min", r.batches / minutes / batches
        else:
            limit, share = f"{per_minute:.0f} requests/min", accepted / minutes / per_minute
        table.add_row(
            r.sender,
            r.mode,
            f"{r.seconds:.1f}",
            f"{r.requests}",
            f"{r.requests / minutes:.0f}",
            limit,
            f"{share:.0%}",
            f"{r.deposits}",
            f"{r.deposits / minutes:.0f}",
            f"{r.throttled}",
            "n/a" if r.exactly_once is None else ("yes" if r.exactly_once else "NO"),
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
