"""QuickBooks deposits Chairside writes balance and reconcile with their payouts.

One world serves the processor and the books. The bookkeeper booked the payouts that arrived
before a cut-over day; Chairside books the rest: extract both, build the marts, plan the
deposits from them (writeback/plan.py with the organisation's QuickBooks mapping), send them
(writeback/quickbooks.py), extract the books again and rebuild. Every payout from the cut-over
then has exactly one deposit, equal to it in net, gross and fee, with no reconciliation
exception; the books' ledger moved by exactly the payouts' amounts; a second run writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from chairside.config import Organisation
from extract.connectors import prepare_landing
from extract.quickbooks.connector import CONNECTOR as QUICKBOOKS
from extract.quickbooks.connector import sync_entity as sync_quickbooks
from extract.stripe.connector import CONNECTOR as STRIPE
from extract.stripe.connector import sync_entity as sync_stripe
from simulators.quickbooks.data import QuickBooksDataSettings
from simulators.stripe.data import StripeDataSettings
from tests.test_canonical import query, run_dbt
from tests.test_quickbooks_extract import CONNECTION as BOOKS
from tests.test_quickbooks_extract import qbo_connection, serve_quickbooks
from tests.test_stripe_extract import serve_stripe, stripe_connection
from tests.test_stripe_simulator import make_world
from writeback.deliver import deliver
from writeback.destinations import destination_for
from writeback.outbox import Outbox
from writeback.plan import plan
from writeback.run import quickbooks_mapping_problems

pytestmark = pytest.mark.slow

# Refunds and disputes inside payouts, no bookkeeping slips and no failed payouts: the books
# Chairside writes must reconcile to the cent.
PROCESSOR = StripeDataSettings(refund_rate=0.05, dispute_rate=0.03)
SELECT = (
    "path:models/staging",
    "path:models/intermediate",
    "path:seeds",
    "path:models/marts/reconciliation",
    "path:models/marts/writeback/wb_payout_deposit_lines.sql",
)
INCOME = {
    "card_terminal": "Patient Card Payments - Terminal",
    "patient_portal": "Patient Card Payments - Portal",
    "payment_plan": "Payment Plan Receipts",
    "membership": "Membership Plan Income",
    "outstanding_balance_collection": "Balance Collections",
}


def organisation(stripe, qbo, cut_over: str) -> Organisation:
    return Organisation.model_validate(
        {
            "id": "test_group",
            "name": "Test Group",
            "connections": [
                stripe_connection(stripe).model_dump(),
                qbo_connection(qbo).model_dump(),
            ],
            "writeback": {
                "quickbooks": {
                    "enabled": True,
                    "connection": BOOKS,
                    "payouts_from": cut_over,
                    "timing": "instant",
                    "bank_account": "Checking",
                    "fee_account": "Merchant Fees",
                    "refund_account": "Patient Refunds",
                    "income_accounts": INCOME,
                    "default_income_account": INCOME["card_terminal"],
                    "batch_size": 10,
                }
            },
        }
    )


def build(root) -> None:
    result = run_dbt(root, "build", "--select", *SELECT, "--indirect-selection", "cautious")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def sync_books(qbo, landing) -> None:
    for entity in QUICKBOOKS.entities:
        sync_quickbooks(qbo_connection(qbo), entity, landing_root=landing, mode="full")


def test_written_deposits_balance_and_reconcile_with_their_payouts(tmp_path, monkeypatch):
    root = tmp_path
    (root / "warehouse").mkdir()
    landing = root / "landing"
    world = make_world()
    cut_over = (world.now_utc - timedelta(days=25)).date()
    books = QuickBooksDataSettings(stripe=PROCESSOR, booked_by_hand_before=cut_over)
    with (
        serve_stripe(world, monkeypatch, data=PROCESSOR) as stripe,
        serve_quickbooks(world, monkeypatch, data=books) as qbo,
    ):
        org = organisation(stripe, qbo, cut_over.isoformat())
        prepare_landing(landing, org)
        # The mapping is checked against the company's live chart before anything is sent.
        assert quickbooks_mapping_problems(org, landing) == []
        wrong = org.model_copy(
            update={
                "writeback": org.writeback.model_copy(
                    update={
                        "quickbooks": org.writeback.quickbooks.model_copy(
                            update={"bank_account": "Merchant Fees"}
                        )
                    }
                )
            }
        )
        (problem,) = quickbooks_mapping_problems(wrong, landing)
        assert problem.startswith("writeback.quickbooks.bank_account:")
        for entity in STRIPE.entities:
            sync_stripe(stripe_connection(stripe), entity, landing_root=landing, mode="full")
        sync_books(qbo, landing)
        build(root)
        before = query(
            root,
            f"""select source_payout_id, payout_amount, n_deposits, primary_code
                from marts.fct_payout_reconciliation
                where payout_status = 'paid' and arrival_date >= date '{cut_over}'""",
        )
        assert before and all(n == 0 for _, _, n, _ in before)  # nobody booked them yet

        outbox = Outbox(root / "outbox.sqlite")
        now = datetime.now(UTC)
        planned = plan(root / "warehouse" / "chairside.duckdb", org, now)
        assert {w.source_ref for w in planned} == {payout for payout, *_ in before}
        outbox.plan(planned)
        with destination_for(org, BOOKS, landing) as qbo_writer:
            report = deliver(outbox, qbo_writer, now=now)
        assert (report.sent, report.failed, report.unknown) == (len(before), [], [])

        # The books, read back by the connector, reconcile with the processor.
        sync_books(qbo, landing)
        build(root)
        after = query(
            root,
            f"""select source_payout_id, n_deposits, net_difference, gross_difference,
                       fee_difference, codes
                from marts.fct_payout_reconciliation
                where payout_status = 'paid' and arrival_date >= date '{cut_over}'""",
        )
        assert len(after) == len(before)
        for payout, n, net, gross, fee, codes in after:
            assert n == 1, f"{payout}: {n} deposits"
            assert (net, gross, fee) == (0, 0, 0), f"{payout}: {net} {gross} {fee}"
            # What is left is about the processor, not the books: a refund inside the payout.
            assert set(codes) <= {"refund_or_chargeback_netted"}, f"{payout}: {codes}"
        exceptions = query(
            root,
            f"""select code, object_id from marts.fct_reconciliation_exceptions
                where code in ('missing_deposit', 'duplicate_posting', 'amount_mismatch_net',
                               'amount_mismatch_gross', 'amount_mismatch_fee', 'orphan_deposit')
                  and object_date >= date '{cut_over}'""",
        )
        assert exceptions == []

        # The ledger moved by the payouts: the bank by their net, fees by their fees.
        ledger = httpx.get(f"{qbo.url}/_sim/ledger", params={"source": "written"}).json()
        cents = Decimal("0.01")
        balances = {
            a["Name"]: Decimal(str(a["normal_balance"])).quantize(cents) for a in ledger["accounts"]
        }
        net_total = sum(Decimal(str(amount)) for _, amount, _, _ in before)
        fees_total = query(
            root,
            f"""select sum(fees_amount) from marts.fct_payout_reconciliation
                where payout_status = 'paid' and arrival_date >= date '{cut_over}'""",
        )[0][0]
        assert balances["Checking"] == net_total
        assert balances["Merchant Fees"] == fees_total

        # Planned again from the rebuilt marts: nothing new, nothing sent.
        assert outbox.plan(plan(root / "warehouse" / "chairside.duckdb", org, now))["planned"] == 0
        with destination_for(org, BOOKS, landing) as qbo_writer:
            again = deliver(outbox, qbo_writer, now=now)
        assert (again.sent, again.found) == (0, 0)
