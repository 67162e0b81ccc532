"""Writeback on the demo platform (``demo_platform``: every simulator, sync, build, the
writeback the demo config enables, a second sync of the PMSs and a rebuild).

Every online payment the world holds at an office whose PMS takes payment writes is on the
patient's ledger exactly once, for the amount the payment type's setting says, and the
reconciliation marts then see it as posted; every outbox row is done and the writeback mart
lists each once."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from chairside.config import load_organisation
from chairside.paths import REPO_ROOT
from tests.warehouse import query as read
from writeback.outbox import Outbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(demo_platform):
    assert demo_platform.returncode == 0, demo_platform.output[-3000:]
    return demo_platform


def query(platform, sql: str) -> list[tuple]:
    return read(platform.warehouse, sql)


def test_every_online_payment_is_on_the_ledger_exactly_once(platform):
    online = pl.read_parquet(platform.truth / "stripe" / "truth_online_payments.parquet")
    refunded = {
        charge
        for (charge,) in query(
            platform,
            "select source_charge_id from marts.wb_payments where writeback_state = 'refunded'",
        )
    }
    expected = set(online["charge_id"]) - refunded
    assert len(expected) > 50  # both Open Dental and NexHealth offices
    assert set(online["pms"]) == {"opendental", "nexhealth"}
    posted = dict(
        query(
            platform,
            """select writeback_charge_id, count(*) from intermediate.int_pms_payments
               where writeback_charge_id is not null group by 1""",
        )
    )
    assert set(posted) == expected
    assert set(posted.values()) == {1}
    # And the world agrees: the truth export names the PMS payment each became.
    assert online.filter(pl.col("charge_id").is_in(expected))["posted_pay_num"].null_count() == 0


def test_amounts_follow_the_payment_types_settings(platform):
    settings = load_organisation(REPO_ROOT / "config" / "demo_org.yaml").writeback
    rows = query(
        platform,
        """select charges.payment_type, charges.gross_amount, charges.net_amount,
                  charges.pms_amount_basis, payments.amount
           from marts.fct_charge_reconciliation as charges
           inner join intermediate.int_pms_payments as payments
               on payments.writeback_charge_id = charges.source_charge_id
           where charges.is_written_back""",
    )
    assert {r[0] for r in rows} >= {"membership", "patient_portal"}
    for payment_type, gross, net, basis, amount in rows:
        wanted = settings.payment(payment_type).amount
        assert basis == wanted
        assert Decimal(amount) == (net if wanted == "net" else gross), payment_type


def test_written_payments_reconcile_and_the_outbox_is_done(platform):
    unposted = query(
        platform,
        """select count(*) from marts.fct_reconciliation_exceptions as exceptions
           inner join marts.fct_charge_reconciliation as charges
               on charges.source_charge_id = exceptions.object_id
           where charges.is_written_back""",
    )[0][0]
    assert unposted == 0
    outbox = Outbox(platform.root / "writeback" / "outbox.sqlite")
    rows = outbox.rows()
    assert rows and {r.state for r in rows} == {"done"}
    marts = dict(query(platform, "select writeback_key, state from marts.fct_writebacks"))
    assert marts == {r.key: "done" for r in rows}
    kinds = {r.kind for r in rows}
    assert {"pms_payment", "commlog"} <= kinds
