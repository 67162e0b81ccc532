"""End to end for the processor and the books: simulators -> extraction -> landing -> `dbt build`.

Both simulators serve ONE world (the books are derived from the processor's payouts), so besides
"staging equals each simulator's truth, row for row" this also shows the sources agreeing: each
paid payout is one deposit of the same net amount.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from extract.quickbooks.connector import CONNECTOR as QUICKBOOKS
from extract.quickbooks.connector import sync_entity as sync_quickbooks
from extract.stripe.connector import CONNECTOR as STRIPE
from extract.stripe.connector import sync_entity as sync_stripe
from simulators.quickbooks.data import QuickBooksDataSettings
from tests.test_dbt_staging import run_dbt
from tests.test_quickbooks_extract import qbo_connection, serve_quickbooks
from tests.test_stripe_extract import serve_stripe, stripe_connection
from tests.test_stripe_simulator import BUSY, make_world

pytestmark = pytest.mark.slow

SELECT = ("--select", "path:models/staging/stripe", "path:models/staging/quickbooks")
LINEAGE = {"connection_id", "source_timezone", "_load_id", "_extracted_at"}
MINOR = {"amount", "amount_captured", "amount_refunded", "fee", "net"}
EPOCH = {"created", "available_on", "arrival_date", "evidence_details_due_by"}
STRIPE_TRUTH = {
    "charges": "stripe_charges",
    "refunds": "stripe_refunds",
    "disputes": "stripe_disputes",
    "balance_transactions": "stripe_balance_transactions",
    "payouts": "stripe_payouts",
}
QB_TRUTH = {
    "accounts": "quickbooks_accounts",
    "classes": "quickbooks_classes",
    "departments": "quickbooks_departments",
    "deposits": "quickbooks_deposits",
    "journal_entries": "quickbooks_journal_entries",
}
QB_LINES = {
    "deposit_lines": ("quickbooks_deposit_lines", "deposit_id"),
    "journal_entry_lines": ("quickbooks_journal_entry_lines", "journal_entry_id"),
}


class Pipeline:
    """Both simulators on one world, one landing zone and one warehouse."""

    def __init__(self, root: Path, stripe, qbo) -> None:
        self.root, self.stripe, self.qbo = root, stripe, qbo
        self.landing = root / "landing"
        (root / "warehouse").mkdir(exist_ok=True)

    def sync(self, mode: str = "incremental") -> None:
        for entity in STRIPE.entities:
            sync_stripe(
                stripe_connection(self.stripe), entity, landing_root=self.landing, mode=mode
            )
        for entity in QUICKBOOKS.entities:
            sync_quickbooks(qbo_connection(self.qbo), entity, landing_root=self.landing, mode=mode)

    def build(self) -> subprocess.CompletedProcess:
        # run_dbt writes every registered entity's empty schema file first.
        result = run_dbt(self.root, "build", *SELECT)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        return result

    def truth(self, name: str) -> dict[str, pl.DataFrame]:
        directory = self.root / name
        for sim in (self.stripe, self.qbo):
            httpx.post(f"{sim.url}/_sim/export", json={"dir": str(directory)}).raise_for_status()
        return {p.stem: pl.read_parquet(p) for p in directory.glob("*.parquet")}

    def staging(self, model: str) -> list[dict]:
        con = duckdb.connect(str(self.root / "warehouse" / "chairside.duckdb"), read_only=True)
        try:
            cursor = con.execute(f"select * from staging.{model}")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    world = make_world()
    world.advance(timedelta(days=3, hours=20), seed=2)  # a payout in transit, edits to come
    data = QuickBooksDataSettings(stripe=BUSY, reviewed_deposit_rate=0.5)
    with (
        serve_stripe(world, monkeypatch) as stripe,
        serve_quickbooks(world, monkeypatch, data=data) as qbo,
    ):
        run = Pipeline(tmp_path_factory.mktemp("stripe_qbo"), stripe, qbo)
        run.sync()
        run.sync()  # a second sync re-reads the overlap: staging must still hold one row each
        run.build()
        yield run
    monkeypatch.undo()


# --- expected rows from the simulators' truth ---------------------------------------------


def stripe_expected(truth: pl.DataFrame, columns: list[str]) -> dict:
    by_column = {name.replace(".", "_"): name for name in truth.columns}
    out = {}
    for row in truth.iter_rows(named=True):
        values = {}
        for column in columns:
            raw = row.get(by_column.get(column, ""))
            if raw is not None and column in MINOR:
                raw = Decimal(raw) / 100
            elif raw is not None and column in EPOCH:
                raw = datetime.fromtimestamp(raw, UTC)
            values[column] = raw
        out[row["id"]] = values
    return out


def qb_column(path: str) -> str:
    split = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
    return "_".join(split.sub("_", part).lower() for part in path.split("."))


def qb_value(column: str, raw):
    if raw is None:
        return None
    if column in ("amount", "total_amt", "current_balance", "current_balance_with_sub_accounts"):
        return Decimal(str(raw)).quantize(Decimal("0.01"))
    if column.startswith("meta_data_"):
        return datetime.fromisoformat(raw)
    if column == "txn_date":
        return date.fromisoformat(raw)
    if column in ("sync_token", "line_num"):
        return int(raw)
    return raw


def qb_expected(truth: pl.DataFrame, columns: list[str], key: str, index: str | None = None):
    by_column = {qb_column(name): name for name in truth.columns}
    out, positions = {}, {}
    for row in truth.iter_rows(named=True):
        values = {c: qb_value(c, row.get(by_column.get(c, ""))) for c in columns}
        if index:  # a line: keyed by its transaction and 1-based position
            positions[row["TxnId"]] = positions.get(row["TxnId"], 0) + 1
            values[key], values[index] = row["TxnId"], positions[row["TxnId"]]
            out[(row["TxnId"], positions[row["TxnId"]])] = values
        else:
            out[row["Id"]] = values
    return out


def actual(rows: list[dict], keys: tuple[str, ...]) -> dict:
    out = {}
    for row in rows:
        values = {k: v for k, v in row.items() if k not in LINEAGE}
        out[row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)] = values
    return out


def assert_stripe_matches(run: Pipeline, truth: dict, entities=STRIPE_TRUTH) -> None:
    for entity in entities:
        rows = run.staging(f"stg_stripe__{entity}")
        have = actual(rows, ("id",))
        columns = [c for c in rows[0] if c not in LINEAGE]
        assert have == stripe_expected(truth[STRIPE_TRUTH[entity]], columns), entity


def assert_quickbooks_matches(run: Pipeline, truth: dict) -> None:
    for entity, name in QB_TRUTH.items():
        rows = run.staging(f"stg_quickbooks__{entity}")
        columns = [c for c in rows[0] if c not in LINEAGE]
        assert actual(rows, ("id",)) == qb_expected(truth[name], columns, "id"), entity
    for entity, (name, parent) in QB_LINES.items():
        rows = run.staging(f"stg_quickbooks__{entity}")
        columns = [c for c in rows[0] if c not in LINEAGE]
        expected = qb_expected(truth[name], columns, parent, "line_index")
        assert actual(rows, (parent, "line_index")) == expected, entity


def assert_itemization_matches(run: Pipeline, truth: dict) -> None:
    txns = truth["stripe_balance_transactions"].filter(pl.col("payout").is_not_null())
    rows = run.staging("stg_stripe__payout_balance_transactions")
    columns = [c for c in rows[0] if c not in LINEAGE | {"payout_id"}]
    expected = stripe_expected(txns, columns)
    payout_of = dict(zip(txns["id"], txns["payout"], strict=True))
    have = actual(rows, ("payout_id", "id"))
    assert set(have) == {(payout_of[k], k) for k in expected}
    assert all(
        {k: v for k, v in values.items() if k != "payout_id"} == expected[txn]
        for (_, txn), values in have.items()
    )


# --- tests --------------------------------------------------------------------------------


def test_staging_equals_each_simulators_truth_row_for_row(pipeline):
    truth = pipeline.truth("truth_first")
    assert_stripe_matches(pipeline, truth)
    assert_itemization_matches(pipeline, truth)
    assert_quickbooks_matches(pipeline, truth)
    statuses = {r["status"] for r in pipeline.staging("stg_stripe__payouts")}
    assert {"paid", "in_transit"} <= statuses


def test_types_and_flattening(pipeline):
    con = duckdb.connect(str(pipeline.root / "warehouse" / "chairside.duckdb"), read_only=True)
    try:
        types = dict(
            con.execute(
                "select table_name || '.' || column_name, data_type from information_schema.columns"
                " where table_schema = 'staging'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types["stg_stripe__charges.amount"] == "DECIMAL(18,2)"
    assert types["stg_stripe__charges.created"] == "TIMESTAMP WITH TIME ZONE"
    assert types["stg_stripe__charges.metadata_patient_ref"] == "VARCHAR"
    assert types["stg_stripe__payouts.automatic"] == "BOOLEAN"
    assert types["stg_quickbooks__deposits.total_amt"] == "DECIMAL(14,2)"
    assert types["stg_quickbooks__deposits.meta_data_last_updated_time"] == (
        "TIMESTAMP WITH TIME ZONE"
    )
    assert types["stg_quickbooks__deposits.txn_date"] == "DATE"
    assert types["stg_quickbooks__deposits.sync_token"] == "BIGINT"
    assert types["stg_quickbooks__deposit_lines.deposit_line_detail_account_ref_value"] == "VARCHAR"
    assert types["stg_quickbooks__journal_entry_lines.journal_entry_line_detail_posting_type"] == (
        "VARCHAR"
    )


def test_every_paid_payout_is_one_deposit_of_its_net_amount(pipeline):
    payouts = {r["id"]: r for r in pipeline.staging("stg_stripe__payouts")}
    deposits = pipeline.staging("stg_quickbooks__deposits")
    booked = {}
    for deposit in deposits:
        payout = re.search(r"po_\w+", deposit["private_note"]).group(0)
        assert payout not in booked  # one deposit per payout
        booked[payout] = deposit["total_amt"]
    assert all(booked[p] == payouts[p]["amount"] for p in booked)
    assert all(payouts[p]["status"] == "paid" for p in booked)
    unbooked = [p for p, r in payouts.items() if r["status"] == "paid" and p not in booked]
    assert len(unbooked) <= 1  # a payout that arrived today is posted a few hours later


def test_after_the_world_advances_edits_appear_without_duplicates(pipeline):
    pipeline.stripe.world.advance(timedelta(days=3), seed=9)
    pipeline.sync()
    pipeline.build()  # unique-key tests are part of the build: no duplicates
    truth = pipeline.truth("truth_advanced")
    # The books filter by LastUpdatedTime: incremental reads bring every edit.
    assert_quickbooks_matches(pipeline, truth)
    deposits = {r["id"]: r for r in pipeline.staging("stg_quickbooks__deposits")}
    assert any(d["sync_token"] == 1 for d in deposits.values())
    # The processor's lists filter by creation: what changed inside the overlap is current...
    assert_stripe_matches(pipeline, truth, ("refunds", "disputes", "balance_transactions",
                                            "payouts"))  # fmt: skip
    assert_itemization_matches(pipeline, truth)
    # ...and a charge refunded or disputed long after it was made waits for the full sync.
    rows = pipeline.staging("stg_stripe__charges")
    expected = stripe_expected(truth["stripe_charges"], [c for c in rows[0] if c not in LINEAGE])
    have = actual(rows, ("id",))
    assert set(have) == set(expected)
    lagging = {k for k in have if have[k] != expected[k]}
    for key in lagging:
        diff = {c for c in have[key] if have[key][c] != expected[key][c]}
        assert diff <= {"amount_refunded", "refunded", "disputed"}
    # (test_stripe_extract shows the daily full sync bringing those up to date as well.)
