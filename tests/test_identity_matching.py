"""Patient matching against a seeded world's truth: standardisation, scoring (real splink on
DuckDB), persons across offices, enquiry outcomes, review decisions.

The world knows who every patient record and every online request really is
(``truth_persons``, ``truth_patient_links``, the request truth), so precision and recall are
measured, not assumed. The end-to-end version (through every simulator, extraction and dbt)
is in tests/test_identity_pipeline.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import polars as pl
import pytest

from simulators.generate import generate_world
from simulators.world import World, WorldSpec
from transforms.identity import decisions, match, resolve, traits, world_records
from transforms.identity import standardise as std

THRESHOLDS = {"auto_link_probability": 0.99, "review_probability": 0.5}
MARGIN = {"auto_link_margin_weight": 3.0}

# --- standardisation ---------------------------------------------------------------------


def test_phone_numbers_become_e164_and_impossible_ones_are_rejected():
    raw = pl.Series(
        "phone",
        ["(312) 555-0142", "312.555.0142", "+1 312 555 0142", "3125550142 x12", "555-0142",
         "(012) 555-0142", "", None, "123"],
    )  # fmt: skip
    assert std.phones_e164(raw).to_list() == [
        "+13125550142", "+13125550142", "+13125550142", "+13125550142", None, None, None, None,
        None,
    ]  # fmt: skip


def test_names_emails_and_birth_dates_are_standardised():
    first = pl.Series("first_name", ["Dr. Robert", "  BOB ", "José", "Mary Ann", None])
    assert std.names(first, "first").to_list() == ["robert", "bob", "jose", "mary", None]
    last = pl.Series("last_name", ["O'Neil", "Smith Jr.", "van der Berg"])
    assert std.names(last, "last").to_list() == ["oneil", "smith", "vanderberg"]
    assert "robert" in std.name_forms("bob") and "robert" in std.name_forms("rob")
    assert set(std.name_forms("bob")) & set(std.name_forms("robert"))
    assert not set(std.name_forms("mary")) & set(std.name_forms("robert"))
    emails = pl.Series("email", [" Ann.Lee@Example.COM ", "not-an-email", ""])
    assert std.emails(emails).to_list() == ["ann.lee@example.com", None, None]
    births = pl.Series("b", [date(1980, 5, 1), date(1900, 1, 1), date(2099, 1, 1), None])
    assert std.birth_dates(births, date(2026, 11, 1)).to_list() == [date(1980, 5, 1)] + [None] * 3


# --- matching quality on the world -------------------------------------------------------


def _resolve(world, decided: pl.DataFrame | None = None):
    today = world.now_utc.date()
    patients = world_records.patients(world)
    requests = world_records.requests(world)
    patient_traits = traits.patient_traits(patients, region="US", today=today)
    enquiry_traits = traits.enquiry_traits(requests, region="US", today=today)
    decided = decided if decided is not None else pl.DataFrame(schema=decisions.SCHEMA)
    u = match.population_u(patient_traits)
    person_of = resolve.persons(
        patient_traits["patient_key"],
        match.score_patients(patient_traits, u),
        decided,
        auto_link_probability=THRESHOLDS["auto_link_probability"],
    )
    pairs = match.score_enquiries(enquiry_traits, patient_traits, u)
    outcomes = resolve.enquiry_outcomes(
        enquiry_traits, pairs, person_of, resolve.phone_index(patient_traits, person_of), decided,
        **THRESHOLDS, **MARGIN,
    )  # fmt: skip
    return Resolved(world, patients, requests, person_of, pairs, outcomes)


@dataclass
class Resolved:
    world: World
    patients: pl.DataFrame  # world records, with the true person_id
    requests: pl.DataFrame  # online requests, with the requester's true person_id
    person_of: pl.DataFrame  # patient_key -> group person
    pairs: pl.DataFrame  # scored (enquiry, patient) pairs
    outcomes: pl.DataFrame  # one outcome per request


@pytest.fixture(scope="module", params=[7, 23])
def resolved(request) -> Resolved:
    return _resolve(generate_world(WorldSpec(seed=request.param, n_persons=3000)))


def _true_person_of_cluster(patients: pl.DataFrame, person_of: pl.DataFrame) -> pl.DataFrame:
    return person_of.join(patients.select("patient_key", true_person="person_id"), on="patient_key")


def test_automatic_links_are_right_and_review_finds_the_rest(resolved):
    r = resolved
    true_of_patient = r.patients.select("patient_key", true_person="person_id")
    result = r.outcomes.join(r.requests.select("enquiry_key", "person_id"), on="enquiry_key",
                           suffix="_true")  # fmt: skip
    linked = result.filter(pl.col("match_outcome") == "exact").join(
        true_of_patient, on="patient_key"
    )
    correct = linked.filter(pl.col("true_person") == pl.col("person_id_true")).height
    precision = correct / linked.height
    assert linked.height > 200
    assert precision >= 0.99, f"{linked.height - correct} wrong automatic links"

    # A true match: the requester has a patient record somewhere in the group.
    is_patient = pl.col("person_id_true").is_in(r.patients["person_id"].implode()).fill_null(False)
    true_matches = result.filter(is_patient)
    candidates = r.pairs.join(true_of_patient, left_on="right_key", right_on="patient_key").select(
        enquiry_key="left_key", candidate_person="true_person"
    )
    in_review = (
        true_matches.filter(pl.col("match_outcome") == "partial")
        .join(candidates, on="enquiry_key")
        .filter(pl.col("candidate_person") == pl.col("person_id_true"))
        .unique("enquiry_key")
        .height
    )
    recall = (correct + in_review) / true_matches.height
    assert recall >= 0.95, f"recall {recall:.3f}"
    # Requesters who are nobody's patient are never linked to someone.
    strangers = result.filter(~is_patient)
    assert strangers.height > 50
    assert strangers.filter(pl.col("match_outcome") == "exact").is_empty()


def test_family_members_sharing_a_phone_are_never_linked_to_each_other(resolved):
    r = resolved
    households = r.world.table("truth_persons").select("person_id", family="household_id")
    result = (
        r.outcomes.filter(pl.col("match_outcome") == "exact")
        .join(r.requests.select("enquiry_key", requester="person_id"), on="enquiry_key")
        .join(r.patients.select("patient_key", linked="person_id"), on="patient_key")
        .join(households.rename({"person_id": "requester"}), on="requester")
        .join(households.rename({"person_id": "linked", "family": "linked_family"}), on="linked")
    )
    family = result.filter(pl.col("family") == pl.col("linked_family"))
    assert family.filter(pl.col("requester") != pl.col("linked")).is_empty()
    # Persons: no group-level person holds two true persons (a parent and child sharing a
    # phone, an address and often an email stay apart).
    clusters = (
        _true_person_of_cluster(r.patients, r.person_of)
        .group_by("person_id")
        .agg(pl.col("true_person").n_unique().alias("n"))
    )
    assert clusters.filter(pl.col("n") > 1).is_empty()


def test_one_person_registered_in_two_offices_is_one_group_person(resolved):
    r = resolved
    joined = _true_person_of_cluster(r.patients, r.person_of)
    twice = joined.group_by("true_person").agg(pl.col("person_id").n_unique().alias("ids"),
                                                pl.len().alias("records"))  # fmt: skip
    multi = twice.filter(pl.col("records") > 1)
    assert multi.height > 50
    one_id = multi.filter(pl.col("ids") == 1).height
    assert one_id / multi.height >= 0.9, f"{multi.height - one_id} of {multi.height} split"


def test_a_phone_alone_links_a_person_only_when_one_person_carries_it(resolved):
    r = resolved
    today = r.world.now_utc.date()
    patient_traits = traits.patient_traits(r.patients, region="US", today=today)
    index = resolve.phone_index(patient_traits, r.person_of)
    holders = index.group_by("phone_e164").agg(pl.col("person_id").n_unique().alias("n"))
    shared = holders.filter(pl.col("n") > 1)["phone_e164"][0]
    single = holders.filter(pl.col("n") == 1)["phone_e164"][0]
    calls = pl.DataFrame(
        {
            "enquiry_key": ["call:shared", "call:single", "call:stranger", "request:family"],
            "phone": [shared, single, "+12125550199", shared],
            # A named request from the shared number by someone with nobody's names.
            "first_name": [None, None, None, "Zebediah"],
            "last_name": [None, None, None, "Quuxworth"],
        }
    ).with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in traits.ENQUIRY_COLUMNS.items()
        if name not in {"enquiry_key", "phone", "first_name", "last_name"}
    )
    enquiry_traits = traits.enquiry_traits(
        calls.select(list(traits.ENQUIRY_COLUMNS)), region="US", today=today
    )
    result = resolve.enquiry_outcomes(
        enquiry_traits, match.score_enquiries(enquiry_traits, patient_traits), r.person_of, index,
        pl.DataFrame(schema=decisions.SCHEMA), **THRESHOLDS, **MARGIN,
    )  # fmt: skip
    by_key = {row["enquiry_key"]: row for row in result.to_dicts()}
    assert by_key["call:shared"]["match_outcome"] == "household"
    assert by_key["call:shared"]["person_id"] is None
    assert by_key["call:shared"]["household_id"] is not None
    assert by_key["call:single"]["match_outcome"] == "exact"
    assert by_key["call:single"]["decided_by"] == "phone"
    assert by_key["call:stranger"]["match_outcome"] == "none"
    assert by_key["call:stranger"]["household_id"] is None
    assert by_key["request:family"]["match_outcome"] == "none"
    assert by_key["request:family"]["household_id"] == by_key["call:shared"]["household_id"]


# --- review decisions --------------------------------------------------------------------


def test_decisions_override_the_model_and_the_latest_wins(tmp_path):
    world = generate_world(WorldSpec(seed=5, n_persons=800))
    before = _resolve(world)
    patients, pairs, outcomes = before.patients, before.pairs, before.outcomes
    partial = outcomes.filter(pl.col("match_outcome") == "partial")["enquiry_key"][0]
    exact = outcomes.filter(pl.col("match_outcome") == "exact").row(0, named=True)
    best_candidate = (
        pairs.filter(pl.col("left_key") == partial).sort("match_weight", descending=True)
    )["right_key"][0]
    twin_a, twin_b = patients["patient_key"][0], patients["patient_key"][1]

    path = tmp_path / "decisions.jsonl"
    for action, subject, obj in (
        ("no_match", partial, None),
        ("link", partial, best_candidate),  # later: replaces the no_match
        ("not_same", exact["enquiry_key"], exact["patient_key"]),
        ("merge", twin_a, twin_b),
    ):
        decisions.record(path, decisions.Decision(reviewer="r1", action=action,
                                                  subject_key=subject, object_key=obj))  # fmt: skip
    decided = decisions.load(path)
    assert decided.height == 4
    after_decisions = _resolve(world, decided)
    person_of2, outcomes2 = after_decisions.person_of, after_decisions.outcomes
    after = {row["enquiry_key"]: row for row in outcomes2.to_dicts()}
    assert after[partial]["match_outcome"] == "exact"
    assert after[partial]["patient_key"] == best_candidate
    assert after[partial]["decided_by"] == "reviewer"
    assert after[exact["enquiry_key"]]["patient_key"] != exact["patient_key"]
    persons2 = dict(person_of2.select("patient_key", "person_id").iter_rows())
    assert persons2[twin_a] == persons2[twin_b]


def test_a_bad_decision_line_stops_with_its_line_number(tmp_path):
    path = tmp_path / "decisions.jsonl"
    decisions.record(path, decisions.Decision(reviewer="r", action="no_match", subject_key="e1"))
    with open(path, "a") as handle:
        handle.write(json.dumps({"reviewer": "r", "action": "link", "subject_key": "e2"}) + "\n")
    with pytest.raises(ValueError, match=r"decisions.jsonl:2: .*needs an object_key"):
        decisions.load(path)
    with pytest.raises(ValueError, match="needs no object_key"):
        decisions.Decision(reviewer="r", action="no_match", subject_key="e", object_key="p")
