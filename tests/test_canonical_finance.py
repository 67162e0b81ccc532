"""The processor and the books in the canonical layer, end to end.

One small world is served by the Stripe and QuickBooks simulators (the books are derived from
the processor's payouts), extracted over loopback HTTP by the real connectors into a real
landing zone, and built by the real dbt CLI (staging, the canonical layer, the seed). The
canonical processor transactions, payouts, accounts and deposits must equal the simulators'
truth exports row for row, and the two sources must agree where reconciliation will rely on
them: a payout's transactions net to its amount, and each paid payout is one deposit of it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import polars as pl
import pytest

from chairside.config import Organisation
from extract.connectors import prepare_landing
from extract.quickbooks.connector import CONNECTOR as QUICKBOOKS
from extract.quickbooks.connector import sync_entity as sync_quickbooks
from extract.stripe.connector import CONNECTOR as STRIPE
from extract.stripe.connector import sync_entity as sync_stripe
from simulators.quickbooks.data import QuickBooksDataSettings
from simulators.stripe.data import StripeDataSettings
from tests.test_canonical import SELECT, query, run_dbt
from tests.test_quickbooks_extract import CONNECTION as QBO_CONNECTION
from tests.test_quickbooks_extract import qbo_connection, serve_quickbooks
from tests.test_stripe_extract import CONNECTION as STRIPE_CONNECTION
from tests.test_stripe_extract import serve_stripe, stripe_connection
from tests.test_stripe_simulator import make_world

pytestmark = pytest.mark.slow

# More refunds, disputes, failed payouts and charges no PMS payment records than a real
# account, so a small world (od_riverside with two clinics, cs_hillcrest, nx_oakridge) has some.
PROCESSOR = StripeDataSettings(
    refund_rate=0.05, dispute_rate=0.05, failed_payout_rate=0.05, orphan_charge_rate=0.1
)
# The organisation's locations as the charge metadata can name them: the Riverside clinics by
# (PMS connection, ClinicNum), Hillcrest by its location id; Oakridge is not configured.
BY_CLINIC = {("od_riverside", 1): "riverside_family", ("od_riverside", 2): "riverside_kids"}
BY_ID = {"cs_hillcrest"}
ORGANISATION = Organisation.model_validate(
    {
        "id": "test_group",
        "name": "Test Group",
        "connections": [
            {
                "id": "od_riverside",
                "vendor": "opendental",
                "base_url": "http://127.0.0.1:9",
                "developer_key_env": "OD_DEVELOPER_KEY",
                "customer_key_env": "OD_RIVERSIDE_CUSTOMER_KEY",
                "timezone": "America/New_York",
            },
            {
                "id": "cs_group",
                "vendor": "carestack",
                "base_url": "http://127.0.0.1:9",
                "account_id_env": "CS_ACCOUNT_ID",
                "account_key_env": "CS_ACCOUNT_KEY",
                "vendor_key_env": "CS_VENDOR_KEY",
                "timezone": "America/Denver",
            },
        ],
        "locations": [
            {"id": location, "name": location, "connection": office, "clinic_num": clinic}
            for (office, clinic), location in BY_CLINIC.items()
        ]
        + [{"id": "cs_hillcrest", "name": "Hillcrest", "connection": "cs_group"}],
    }
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Serve one world over both simulators, extract everything, build once; yields
    (root, truth tables)."""
    root = tmp_path_factory.mktemp("canonical_finance")
    world = make_world()
    world.advance(timedelta(days=3, hours=20), seed=2)  # a payout in transit, one not booked yet
    monkeypatch = pytest.MonkeyPatch()
    with (
        serve_stripe(world, monkeypatch, data=PROCESSOR) as stripe,
        serve_quickbooks(world, monkeypatch, data=QuickBooksDataSettings(stripe=PROCESSOR)) as qbo,
    ):
        landing = root / "landing"
        prepare_landing(landing, ORGANISATION)  # other vendors' sources read as empty
        for entity in STRIPE.entities:
            sync_stripe(stripe_connection(stripe), entity, landing_root=landing, mode="full")
        for entity in QUICKBOOKS.entities:
            sync_quickbooks(qbo_connection(qbo), entity, landing_root=landing, mode="full")
        for sim in (stripe, qbo):
            export = httpx.post(f"{sim.url}/_sim/export", json={"dir": str(root / "truth")})
            export.raise_for_status()
    monkeypatch.undo()
    (root / "warehouse").mkdir()
    result = run_dbt(root, "build", "--select", *SELECT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    truth = {p.stem: pl.read_parquet(p) for p in (root / "truth").glob("*.parquet")}
    return root, truth


# --------------------------------------------------------------------------- the truth


def key(system: str, connection: str, native: str | None) -> str | None:
    if native is None:
        return None
    return hashlib.md5(f"{system}-{connection}-{native}".encode()).hexdigest()


def money(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents) / 100


def instant(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def utc_date(epoch: int) -> date:
    return instant(epoch).date()


def org_location(location: str | None, clinic: str | None) -> str | None:
    if location in BY_ID:
        return location
    return BY_CLINIC.get((location, int(clinic or 0)))


def charge_of(truth: dict) -> dict[str, str]:
    """Source object id -> the charge it belongs to (charges, refunds, disputes)."""
    out = {c: c for c in truth["stripe_charges"]["id"]}
    for table in ("stripe_refunds", "stripe_disputes"):
        out |= dict(truth[table].select("id", "charge").iter_rows())
    return out


def expected_transactions(truth: dict) -> set[tuple]:
    charges = {row["id"]: row for row in truth["stripe_charges"].iter_rows(named=True)}
    charge_ids = charge_of(truth)
    types = {"other_adjustment": "adjustment"}
    rows = set()
    for t in truth["stripe_balance_transactions"].iter_rows(named=True):
        charge = charge_ids.get(t["source"])
        meta = charges.get(charge, {})
        location = meta.get("metadata.location")
        rows.add((
            key("stripe", STRIPE_CONNECTION, t["id"]), t["id"],
            key("stripe", STRIPE_CONNECTION, t["payout"]), t["payout"], charge,
            org_location(location, meta.get("metadata.pms_clinic_num")), location,
            meta.get("metadata.pms_payment_ref"), meta.get("metadata.patient_ref"),
            meta.get("metadata.payment_type"),
            types.get(t["reporting_category"], t["reporting_category"]), t["type"], t["status"],
            instant(t["created"]), utc_date(t["available_on"]), money(t["amount"]),
            money(t["fee"]), money(t["net"]), t["currency"],
        ))  # fmt: skip
    return rows


# --------------------------------------------------------------------------- canonical == truth


def test_processor_transactions_equal_the_processors_truth(run):
    root, truth = run
    got = query(
        root,
        "select processor_transaction_key, source_processor_transaction_id, payout_key, "
        "source_payout_id, source_charge_id, org_location_id, location_ref, pms_payment_ref, "
        "patient_ref, payment_type, transaction_type, vendor_type, status, created_at, "
        "available_on, gross_amount, fee_amount, net_amount, currency "
        "from intermediate.int_processor_transactions where source_system = 'stripe'",
    )
    expected = expected_transactions(truth)
    assert len(got) == len(expected) == truth["stripe_balance_transactions"].height
    assert set(got) == expected
    # The world exercises every kind of movement, and both kinds of metadata gap.
    seen = Counter(row[10] for row in got)
    assert set(seen) == {"charge", "refund", "dispute", "dispute_reversal", "payout",
                         "payout_reversal"}  # fmt: skip
    assert {row[12] for row in got} == {"pending", "available"}
    assert any(row[3] is None for row in got)  # not paid out yet
    assert any(row[4] and row[7] is None for row in got)  # a charge no PMS payment records


def test_payouts_equal_the_processors_truth(run):
    root, truth = run
    expected = {
        (key("stripe", STRIPE_CONNECTION, p["id"]), p["id"], p["status"], money(p["amount"]),
         p["currency"], instant(p["created"]), utc_date(p["arrival_date"]), p["method"],
         p["automatic"], p["failure_code"])
        for p in truth["stripe_payouts"].iter_rows(named=True)
    }  # fmt: skip
    got = query(
        root,
        "select payout_key, source_payout_id, status, amount, currency, created_at, "
        "arrival_date, method, is_automatic, failure_code from intermediate.int_payouts",
    )
    assert len(got) == len(expected)
    assert set(got) == expected
    assert {"paid", "failed", "in_transit"} <= {row[2] for row in got}


def test_accounts_and_deposits_equal_the_books_truth(run):
    root, truth = run
    accounts = {
        (a["Id"], a["Name"], a["FullyQualifiedName"], a["Classification"].lower(),
         a["AccountType"], a["AccountSubType"], a["CurrencyRef.value"].lower(),
         Decimal(str(a["CurrentBalance"])), a["Active"],
         datetime.fromisoformat(a["MetaData.LastUpdatedTime"]))
        for a in truth["quickbooks_accounts"].iter_rows(named=True)
    }  # fmt: skip
    assert set(query(
        root,
        "select source_accounting_account_id, account_name, fully_qualified_name, "
        "classification, account_type, account_subtype, currency, current_balance, is_active, "
        "source_updated_at from intermediate.int_accounting_accounts",
    )) == accounts  # fmt: skip

    deposits = {
        (key("quickbooks", QBO_CONNECTION, d["Id"]), d["Id"],
         key("quickbooks", QBO_CONNECTION, d["DepositToAccountRef.value"]),
         date.fromisoformat(d["TxnDate"]), Decimal(str(d["TotalAmt"])).quantize(Decimal("0.01")),
         d["CurrencyRef.value"].lower(), d["PrivateNote"], d["payout_id"],
         datetime.fromisoformat(d["MetaData.CreateTime"]),
         datetime.fromisoformat(d["MetaData.LastUpdatedTime"]))
        for d in truth["quickbooks_deposits"].iter_rows(named=True)
    }  # fmt: skip
    got = query(
        root,
        "select accounting_deposit_key, source_accounting_deposit_id, deposit_account_key, "
        "deposit_date, total_amount, currency, memo, processor_payout_ref, created_at, "
        "source_updated_at from intermediate.int_accounting_deposits",
    )
    assert len(got) == len(deposits)
    assert set(got) == deposits
    # The deposit account is a canonical account: the Checking bank account.
    [(bank,)] = query(
        root,
        "select distinct a.account_subtype from intermediate.int_accounting_deposits d "
        "join intermediate.int_accounting_accounts a "
        "on d.deposit_account_key = a.accounting_account_key",
    )
    assert bank == "Checking"


# --------------------------------------------------------------------------- the sources agree


def test_each_payouts_transactions_net_to_its_amount(run):
    root, truth = run
    rows = query(
        root,
        "select p.source_payout_id, p.amount, "
        "sum(t.net_amount) filter (where t.transaction_type <> 'payout'), "
        "sum(t.net_amount) filter (where t.transaction_type = 'payout'), "
        "sum(t.gross_amount - t.fee_amount - t.net_amount) "
        "from intermediate.int_payouts p join intermediate.int_processor_transactions t "
        "on t.payout_key = p.payout_key group by all",
    )
    assert len(rows) == truth["stripe_payouts"].height  # every payout, failed ones included
    for payout, amount, itemized, own, residue in rows:
        assert itemized == amount, payout
        assert own == -amount, payout  # the payout's own transaction debits exactly that
        assert residue == 0, payout


def test_each_paid_payout_is_one_deposit_of_its_amount(run):
    root, truth = run
    rows = query(
        root,
        "select p.source_payout_id, p.status, p.amount, p.arrival_date, "
        "count(d.accounting_deposit_key), min(d.total_amount), min(d.deposit_date) "
        "from intermediate.int_payouts p left join intermediate.int_accounting_deposits d "
        "on d.processor_payout_ref = p.source_payout_id group by all",
    )
    booked = {row[0]: row for row in rows if row[4]}
    for payout, status, amount, arrival, n, total, deposit_date in booked.values():
        assert (status, n, total, deposit_date) == ("paid", 1, amount, arrival), payout
    # Every deposit names a payout, and the books book exactly the payouts the truth says.
    assert set(booked) == set(truth["quickbooks_deposits"]["payout_id"])
    [(unlinked,)] = query(
        root,
        "select count(*) from intermediate.int_accounting_deposits "
        "where processor_payout_ref is null",
    )
    assert unlinked == 0
    # A payout that arrived today is posted some hours later: paid, not booked yet.
    waiting = [row for row in rows if row[1] == "paid" and not row[4]]
    assert len(waiting) == 1
    assert all(row[4] == 0 for row in rows if row[1] != "paid")  # failed, in transit


def test_counts_and_money_per_location_equal_the_truth(run):
    root, truth = run
    expected: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for row in expected_transactions(truth):
        where = (row[5], row[6], row[10])  # org location, location ref, type
        expected[where][0] += 1
        expected[where][1] += row[17]
    got = {
        (org, ref, kind): [n, net]
        for org, ref, kind, n, net in query(
            root,
            "select org_location_id, location_ref, transaction_type, count(*), sum(net_amount) "
            "from intermediate.int_processor_transactions group by all",
        )
    }
    assert got == dict(expected)
    orgs = {org for org, _, kind in got if kind == "charge"}
    assert orgs == {"riverside_family", "riverside_kids", "cs_hillcrest", None}
    # Oakridge is not in the organisation config: its money keeps its location reference.
    assert any(ref == "nx_oakridge" and org is None for org, ref, _ in got)


def test_sampled_refund_and_dispute_carry_their_charges_metadata(run):
    root, truth = run
    refund = truth["stripe_refunds"].row(0, named=True)
    charge = truth["stripe_charges"].filter(pl.col("id") == refund["charge"]).row(0, named=True)
    [row] = query(
        root,
        "select source_charge_id, pms_payment_ref, patient_ref, payment_type, gross_amount, "
        "fee_amount, net_amount from intermediate.int_processor_transactions "
        "where source_processor_transaction_id = ?",
        [refund["balance_transaction"]],
    )
    refunded = -money(refund["amount"])
    assert row == (
        charge["id"], charge["metadata.pms_payment_ref"], charge["metadata.patient_ref"],
        charge["metadata.payment_type"], refunded, Decimal(0), refunded,
    )  # fmt: skip

    dispute = truth["stripe_disputes"].row(0, named=True)
    [(gross, fee, net, kind, vendor_type)] = query(
        root,
        "select gross_amount, fee_amount, net_amount, transaction_type, vendor_type "
        "from intermediate.int_processor_transactions "
        "where source_charge_id = ? and transaction_type = 'dispute'",
        [dispute["charge"]],
    )
    assert (kind, vendor_type) == ("dispute", "adjustment")
    assert gross == -money(dispute["amount"]) and fee == PROCESSOR.dispute_fee_cents / 100
    assert net == gross - fee


def test_types_and_every_test_of_the_layer(run):
    root, _ = run
    types = dict(
        query(
            root,
            "select table_name || '.' || column_name, data_type from information_schema.columns "
            "where table_schema = 'intermediate'",
        )
    )
    for column in ("int_processor_transactions.net_amount", "int_payouts.amount",
                   "int_accounting_deposits.total_amount",
                   "int_accounting_accounts.current_balance"):  # fmt: skip
        assert types[column] == "DECIMAL(14,2)", column
    for column in ("int_processor_transactions.created_at", "int_payouts.created_at",
                   "int_accounting_deposits.created_at"):  # fmt: skip
        assert types[column] == "TIMESTAMP WITH TIME ZONE", column
    results = json.loads((Path(root) / "target" / "run_results.json").read_text())["results"]
    ran = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    for unit_test in (
        "stripe_transactions_linked_to_payout_charge_and_location",
        "stripe_payout_dates_are_utc_dates",
        "quickbooks_deposit_names_its_processor_payout",
        "quickbooks_account_classification_lowercase",
    ):
        assert ran[unit_test] == "pass", unit_test
    mine = {k: v for k, v in ran.items() if "stripe" in k or "quickbooks" in k}
    assert all(v in ("success", "pass") for v in mine.values()), mine
