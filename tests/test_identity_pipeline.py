"""Patient identity end to end: every simulator over loopback HTTP, every sync job through
Dagster, the real dbt build (identity models included), against the simulated world's truth.

The demo pipeline runs once per session (``demo_platform`` in conftest); its world is
regenerated here from the same seed to learn who every vendor's patient id really is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from simulators.carestack import wire as cs_wire
from simulators.generate import generate_world
from simulators.nexhealth import data as nx_data
from simulators.world import WorldSpec
from tests.conftest import DEMO_TEST_PERSONS
from transforms.identity import decisions

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"


@pytest.fixture(scope="module")
def platform(demo_platform):
    assert demo_platform.returncode == 0, demo_platform.output[-3000:]
    return demo_platform


@pytest.fixture(scope="module")
def true_patients() -> pl.DataFrame:
    """(source_system, connection_id, source_patient_id) -> the true person, for every
    vendor's patients of the demo group."""
    world = generate_world(WorldSpec(seed=7, n_persons=DEMO_TEST_PERSONS))
    links = world.table("truth_patient_links").select("office", "PatNum", "person_id")
    frames = [
        links.filter(pl.col("office") == office.key).select(
            source_system=pl.lit("opendental"),
            connection_id=pl.lit(office.key),  # config/demo_org.yaml names them alike
            source_patient_id=pl.col("PatNum").cast(pl.String),
            person_id="person_id",
        )
        for office in world.offices_on("opendental")
    ]
    for account in cs_wire.accounts(world).values():
        for slot, office in account.slots():
            frames.append(
                links.filter(pl.col("office") == office.key).select(
                    source_system=pl.lit("carestack"),
                    connection_id=pl.lit("carestack_group"),
                    source_patient_id=cs_wire.account_id_of(pl.col("PatNum"), slot).cast(pl.String),
                    person_id="person_id",
                )
            )
    frames.extend(
        links.filter(pl.col("office") == location.office).select(
            source_system=pl.lit("nexhealth"),
            connection_id=pl.lit("nexhealth_group"),
            source_patient_id=(pl.col("PatNum") + location.id * nx_data.ID_SPACE).cast(pl.String),
            person_id="person_id",
        )
        for location in nx_data.locations(world, {}, "dentrix")
    )
    return pl.concat(frames)


def query(warehouse: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).pl()


def patients_with_truth(warehouse: Path, true_patients: pl.DataFrame) -> pl.DataFrame:
    found = query(
        warehouse,
        "select p.patient_key, p.source_system, p.connection_id, p.source_patient_id, "
        "persons.person_id "
        "from intermediate.int_patients p "
        "join identity.identity_patient_persons persons using (patient_key)",
    )
    joined = found.join(
        true_patients.rename({"person_id": "true_person"}),
        on=["source_system", "connection_id", "source_patient_id"],
        how="left",
    )
    assert joined["true_person"].null_count() == 0, "a warehouse patient the world lacks"
    return joined


def test_one_person_per_human_across_every_pms(platform, true_patients):
    patients = patients_with_truth(platform.warehouse, true_patients)
    mixed = patients.group_by("person_id").agg(pl.col("true_person").n_unique().alias("n"))
    assert mixed.filter(pl.col("n") > 1).is_empty(), "a group person holds two humans"
    spread = patients.group_by("true_person").agg(
        pl.col("person_id").n_unique().alias("ids"), pl.col("source_system").n_unique().alias("pms")
    )
    across = spread.filter(pl.col("pms") > 1)
    assert across.height >= 10  # people registered at offices on two different PMSs
    assert across.filter(pl.col("ids") == 1).height / across.height >= 0.9


def test_online_requests_match_their_requesters(platform, true_patients):
    patients = patients_with_truth(platform.warehouse, true_patients)
    truth = pl.read_parquet(
        platform.truth / "carestack" / "truth_carestack_appointment_requests.parquet"
    ).select(source_appointment_request_id=pl.col("id").cast(pl.String), requester="person_id")
    enquiries = query(
        platform.warehouse,
        "select e.enquiry_key, e.match_outcome, e.patient_key, r.source_appointment_request_id "
        "from identity.identity_enquiries e "
        "join intermediate.int_appointment_requests r on r.appointment_request_key = e.enquiry_key",
    ).join(truth, on="source_appointment_request_id")
    assert enquiries.height > 300
    true_of = patients.select("patient_key", "true_person")
    exact = enquiries.filter(pl.col("match_outcome") == "exact").join(true_of, on="patient_key")
    right = exact.filter(pl.col("true_person") == pl.col("requester")).height
    assert right / exact.height >= 0.99, f"{exact.height - right} wrong of {exact.height}"

    queue = query(
        platform.warehouse,
        "select subject_key as enquiry_key, candidate_patient_key as patient_key "
        "from identity.identity_review_queue where item_kind = 'enquiry'",
    ).join(true_of, on="patient_key")
    is_patient = pl.col("requester").is_in(patients["true_person"].implode()).fill_null(False)
    should = enquiries.filter(is_patient)
    reviewed = (
        should.filter(pl.col("match_outcome") == "partial")
        .join(queue, on="enquiry_key", suffix="_candidate")
        .filter(pl.col("true_person") == pl.col("requester"))
        .unique("enquiry_key")
        .height
    )
    assert (right + reviewed) / should.height >= 0.95


def test_calls_resolve_to_households_and_to_a_person_only_when_one_carries_the_number(
    platform, true_patients
):
    patients = patients_with_truth(platform.warehouse, true_patients)
    calls = query(
        platform.warehouse,
        "select e.match_outcome, e.person_id, e.phone_e164, e.decided_by, c.source_call_id "
        "from identity.identity_enquiries e "
        "join intermediate.int_calls c on c.call_key = e.enquiry_key "
        "where c.source_system = 'twilio'",
    )
    truth = pl.read_parquet(platform.truth / "twilio" / "truth_twilio_calls.parquet").select(
        source_call_id="session_sid", caller_kind="caller_kind", caller="person_id"
    )
    joined = calls.join(truth, on="source_call_id")
    assert joined.height == calls.height > 500
    assert set(joined["decided_by"]) == {"phone"}
    # Unknown numbers (prospects) are nobody; a patient's call is someone unless the office
    # never recorded that number (or only without its area code, which cannot be valid).
    assert set(joined.filter(pl.col("caller_kind") == "prospect")["match_outcome"]) == {"none"}
    from_patients = joined.filter(pl.col("caller_kind") == "patient")
    assert (from_patients["match_outcome"] != "none").mean() >= 0.97
    # A person only when exactly one human of the group carries the number.
    carriers = query(
        platform.warehouse,
        "select distinct phone_e164, patient_key from identity.identity_patient_traits, "
        "unnest(phones) as t(phone_e164)",
    ).join(patients.select("patient_key", "true_person", "person_id"), on="patient_key")
    humans = carriers.group_by("phone_e164").agg(
        pl.col("true_person").n_unique().alias("n"), pl.col("person_id").n_unique().alias("ids")
    )
    outcome_vs_humans = joined.join(humans, on="phone_e164", how="left")
    nobody = outcome_vs_humans.filter(pl.col("match_outcome") == "none")
    assert nobody["n"].null_count() == nobody.height  # no patient record carries the number
    exact = outcome_vs_humans.filter(pl.col("match_outcome") == "exact")
    household = outcome_vs_humans.filter(pl.col("match_outcome") == "household")
    assert exact.height > 0 and household.height > 0
    assert set(exact["n"]) == {1} and set(exact["ids"]) == {1}
    assert household["ids"].min() > 1
    # A household of one human: their records in two offices were not joined (rare).
    assert (household["n"] > 1).mean() >= 0.97


# --- review decisions survive a rebuild ----------------------------------------------------


def run_dbt(root: Path, landing: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(landing),
        "CHAIRSIDE_WAREHOUSE": str(root / "warehouse.duckdb"),
        "CHAIRSIDE_DECISIONS": str(root / "decisions.jsonl"),
        "DO_NOT_TRACK": "1",
    }
    command = [
        str(dbt), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(root / "target"), "--log-path", str(root / "logs"),
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


# A partially matched request whose best candidate booked within the unresponsive window
# (14 days) after it: linking them must make that booking the answer to a lead.
LINKABLE = """
    select q.subject_key, q.candidate_patient_key, q.candidate_person_id,
           arg_min(a.appointment_key, a.booked_at) as appointment_key
    from identity.identity_review_queue q
    join identity.identity_enquiries e on e.enquiry_key = q.subject_key
    join identity.identity_patient_persons pp on pp.person_id = q.candidate_person_id
    join intermediate.int_appointments a on a.patient_key = pp.patient_key
     and a.booked_at >= e.occurred_at and a.booked_at <= e.occurred_at + interval 14 day
    where q.item_kind = 'enquiry' and q.candidate_rank = 1
    group by all order by q.subject_key limit 1
"""


def test_a_review_decision_survives_a_full_rebuild_and_moves_the_funnel(platform, tmp_path):
    landing = platform.root / "landing"
    shutil.copy(platform.warehouse, tmp_path / "warehouse.duckdb")
    item = query(tmp_path / "warehouse.duckdb", LINKABLE).row(0, named=True)
    enquiry, patient = item["subject_key"], item["candidate_patient_key"]
    journeys_sql = (
        "select person_id, enquiry_at from marts.fct_lead_journeys "
        f"where booked_appointment_key = '{item['appointment_key']}'"
    )
    assert query(tmp_path / "warehouse.duckdb", journeys_sql).is_empty()  # no lead booked it
    decisions.record(
        tmp_path / "decisions.jsonl",
        decisions.Decision(reviewer="qa", action="link", subject_key=enquiry, object_key=patient),
    )

    # The warehouse is thrown away and rebuilt from the landing zone: the decision is applied.
    (tmp_path / "warehouse.duckdb").unlink()
    result = run_dbt(tmp_path, landing, "build", "--exclude", "resource_type:test")
    assert result.returncode == 0, result.stdout[-3000:]
    after = query(
        tmp_path / "warehouse.duckdb",
        "select e.match_outcome, e.patient_key, e.decided_by, e.occurred_at, "
        "(select count(*) from identity.identity_review_queue q where q.subject_key = "
        f"e.enquiry_key) as queued from identity.identity_enquiries e "
        f"where e.enquiry_key = '{enquiry}'",
    ).row(0, named=True)
    assert after["match_outcome"] == "exact" and after["patient_key"] == patient
    assert after["decided_by"] == "reviewer" and after["queued"] == 0
    # The funnel: the request's journey is now the person's, and that booking answers it.
    booked = query(tmp_path / "warehouse.duckdb", journeys_sql)
    assert booked.height == 1
    assert booked["person_id"][0] == item["candidate_person_id"]
    assert booked["enquiry_at"][0] <= after["occurred_at"]
