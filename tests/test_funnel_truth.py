"""The lead funnel against the simulated world's truth, end to end (every simulator, every sync
job, the real dbt build): what the world knows happened to each lead is what the marts say.

- Online requests the practice booked (the CareStack truth names the appointment): the journey
  they start is booked as that very appointment, when it was created, and reaches the stage
  the world's appointment reached (a completed visit is checked out).
- Calls from people who never became patients (the phone system's "prospects"): every one is a
  lead, none is ever booked, the first contact back is the first callback or staff text the
  phone system's truth records for that number, and an unanswered one is lost as unresponsive
  exactly once its deadline has passed.
- The funnel aggregates count exactly the journeys, and a rate is shown only for closed cohorts.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from simulators.carestack import wire as cs_wire
from simulators.generate import generate_world
from simulators.world import WorldSpec
from tests.conftest import DEMO_TEST_PERSONS

pytestmark = pytest.mark.slow

UNRESPONSIVE_DAYS = 14  # config/demo_org.yaml leaves the funnel settings at their defaults


def query(warehouse: Path, sql: str) -> pl.DataFrame:
    """Rows of ``sql``, timestamps in UTC (DuckDB names it Etc/UTC, the truth files UTC)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql(sql).pl()
    return frame.with_columns(pl.selectors.datetime().dt.convert_time_zone("UTC"))


@pytest.fixture(scope="module")
def platform(demo_platform):
    assert demo_platform.returncode == 0, demo_platform.output[-3000:]
    return demo_platform


@pytest.fixture(scope="module")
def journeys(platform) -> pl.DataFrame:
    return query(platform.warehouse, "select * from marts.fct_lead_journeys")


def test_booked_requests_book_their_appointment_and_reach_its_stage(platform, journeys):
    world = generate_world(WorldSpec(seed=7, n_persons=DEMO_TEST_PERSONS))
    slots = {
        office.key: slot
        for account in cs_wire.accounts(world).values()
        for slot, office in account.slots()
    }
    truth = pl.read_parquet(
        platform.truth / "carestack" / "truth_carestack_appointment_requests.parquet"
    ).filter(pl.col("outcome") == "booked")
    appointments = world.table("appointments").select("office", "AptNum", "AptStatus")
    expected = truth.join(appointments, on=["office", "AptNum"]).with_columns(
        source_appointment_id=(
            pl.col("AptNum") + pl.col("office").replace_strict(slots) * cs_wire.ID_STRIDE
        ).cast(pl.String),
        source_appointment_request_id=pl.col("id").cast(pl.String),
    )
    keys = query(
        platform.warehouse,
        "select r.appointment_request_key as first_enquiry_key, r.source_appointment_request_id,"
        " a.appointment_key, a.source_appointment_id, a.booked_at as appointment_booked_at "
        "from intermediate.int_appointment_requests r "
        "join intermediate.int_appointments a on a.source_system = 'carestack' "
        "and a.appointment_key = r.appointment_key",
    )
    checked = expected.join(keys, on=["source_appointment_request_id", "source_appointment_id"])
    assert checked.height == expected.height > 30  # the vendor's link survived extraction
    found = checked.join(journeys, on="first_enquiry_key")
    assert found.height >= 0.9 * checked.height  # the rest joined an earlier journey
    assert found["booked_appointment_key"].eq_missing(found["appointment_key"]).all()
    assert found["booked_at"].eq_missing(found["appointment_booked_at"]).all()
    complete = found.filter(pl.col("AptStatus") == "Complete")
    assert complete.height > 10
    assert set(complete["current_stage"]) == {"checked_out"}
    upcoming = found.filter(pl.col("AptStatus") == "Scheduled")
    assert set(upcoming["current_stage"]) <= {"booked", "arrived"}


def test_prospect_calls_are_leads_never_booked_and_contacted_when_the_phone_says(
    platform, journeys
):
    calls = pl.read_parquet(platform.truth / "twilio" / "truth_twilio_calls.parquet")
    prospects = calls.filter(
        (pl.col("caller_kind") == "prospect") & (pl.col("direction") == "inbound")
    )
    keys = query(
        platform.warehouse,
        "select call_key as first_enquiry_key, source_call_id as session_sid "
        "from intermediate.int_calls where source_system = 'twilio'",
    )
    leads = query(
        platform.warehouse,
        "select enquiry_key from identity.identity_enquiries where is_new_contact",
    )
    prospect_keys = prospects.join(keys, on="session_sid")
    assert prospect_keys.height == prospects.height > 100
    # Every prospect call is a lead (its number was no patient's).
    assert prospect_keys["first_enquiry_key"].is_in(leads["enquiry_key"].implode()).all()

    first = prospect_keys.join(journeys, on="first_enquiry_key")
    assert first.height > 50
    assert first["booked_at"].null_count() == first.height
    assert set(first["identity_basis"]) == {"phone"}

    # First contact back: the earliest outbound call or staff text the phone system's truth
    # records for the number inside the journey.
    touches = pl.concat(
        [
            calls.filter(pl.col("direction") != "inbound").select("phone", touch_at="start_time"),
            calls.select("phone", touch_at="staff_reply_at"),
        ]
    ).drop_nulls()
    expected = (
        first.select("journey_id", "phone", "enquiry_at", "next_journey_at", "first_contact_at")
        .join(touches, on="phone", how="left")
        .filter(
            pl.col("touch_at").is_null()
            | (
                (pl.col("touch_at") >= pl.col("enquiry_at"))
                & (
                    pl.col("next_journey_at").is_null()
                    | (pl.col("touch_at") < pl.col("next_journey_at"))
                )
            )
        )
        .group_by("journey_id", "first_contact_at", "enquiry_at")
        .agg(expected_contact=pl.col("touch_at").min())
    )
    assert expected.height == first.height
    # A text is sent a second after staff create it: the mart reads the sent time, the truth
    # records the creation.
    gap = (pl.col("first_contact_at") - pl.col("expected_contact")).dt.total_seconds()
    mismatched = expected.filter(
        (pl.col("first_contact_at").is_null() != pl.col("expected_contact").is_null())
        | ~gap.is_between(0, 2).fill_null(True)
    )
    assert mismatched.is_empty(), mismatched.head(5)
    assert expected["expected_contact"].null_count() < expected.height  # some were called back

    # Unresponsive exactly when the deadline has passed as of the data.
    as_of = journeys["as_of_at"].max()
    deadline = first["enquiry_at"] + timedelta(days=UNRESPONSIVE_DAYS)
    assert ((first["lost_reason"] == "unresponsive") == (deadline <= as_of)).all()


def test_the_funnel_counts_exactly_the_journeys(platform, journeys):
    funnel = query(platform.warehouse, "select * from marts.agg_lead_funnel")
    by_group = journeys.group_by("org_location_id", "channel", "cohort_period_start").agg(
        leads=pl.len(),
        booked=pl.col("booked_at").count(),
        checked_out=pl.col("checked_out_at").count(),
    )
    joined = funnel.join(
        by_group, on=["org_location_id", "channel", "cohort_period_start"], nulls_equal=True,
        suffix="_journeys",
    )  # fmt: skip
    assert joined.height == funnel.height == by_group.height
    for column in ("leads", "booked", "checked_out"):
        assert (joined[column] == joined[f"{column}_journeys"]).all(), column
    closed = joined.filter(pl.col("cohort_closed"))
    assert closed.height > 0
    rate = closed["booked"] / closed["leads"]
    assert ((closed["lead_to_booked_rate"] - rate).abs() < 1e-9).all()
    assert joined.filter(~pl.col("cohort_closed"))["lead_to_booked_rate"].null_count() == (
        joined.filter(~pl.col("cohort_closed")).height
    )
