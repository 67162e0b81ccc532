"""Time patient matching as the group grows: standardise, score patient pairs (dedupe across
the group), score enquiries against every patient, resolve persons and outcomes. Side by side,
in the same run on the same records, a peer: the deterministic exact rule most front-desk tools
start with (same last name, first name, birth date and phone or email), as one DuckDB join.

Run: python benchmarks/bench_identity.py [n_persons ...]   (default: 100k 300k 1M)

The world's four CareStack-served offices give the online requests (about 100k at 1M persons,
capped at 100k); they and the patients carry their true person, so each run also reports
precision and recall next to the time.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import polars as pl

from simulators.generate import generate_world
from simulators.world import WorldSpec
from transforms.identity import decisions, match, resolve, traits, world_records

SIZES = (100_000, 300_000, 1_000_000)
MAX_ENQUIRIES = 100_000
SETTINGS = {"auto_link_probability": 0.99, "review_probability": 0.5}


def _world(n_persons: int):
    spec = WorldSpec(seed=3, n_persons=n_persons)
    # Four of the six offices on CareStack (online requests come from CareStack offices).
    offices = tuple(
        replace(o, pms="carestack", customer_key="cs-account-1001") if o.pms == "nexhealth" else o
        for o in spec.offices
    )
    return generate_world(replace(spec, offices=offices))


def _timed(timings: dict, name: str, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    timings[name] = time.perf_counter() - started
    return result


def _exact_rule(patient_traits: pl.DataFrame, enquiry_traits: pl.DataFrame) -> pl.DataFrame:
    """The peer: a deterministic exact join (no nicknames, no typos, needs a birth date)."""
    con = duckdb.connect()
    names = ("first_name", "last_name", "birth_date", "email")
    con.register("p", patient_traits.select("patient_key", *names, "phones").to_arrow())
    con.register("e", enquiry_traits.select("enquiry_key", *names, "phone_1").to_arrow())
    return con.sql(
        """
        select e.enquiry_key, min(p.patient_key) as patient_key, count(*) as candidates
        from e join p
          on e.last_name = p.last_name and e.first_name = p.first_name
         and e.birth_date = p.birth_date
        where list_contains(p.phones, e.phone_1) or e.email = p.email
        group by e.enquiry_key
        """
    ).pl()


def bench(n_persons: int) -> None:
    world = _world(n_persons)
    today = world.now_utc.date()
    patients = world_records.patients(world)
    requests = world_records.requests(world).sample(
        min(MAX_ENQUIRIES, len(world_records.requests(world))), seed=1
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pt = _timed(timings, "standardise", traits.patient_traits, patients, region="US", today=today)
    et = traits.enquiry_traits(requests, region="US", today=today)
    u = _timed(timings, "estimate u", match.population_u, pt)
    pairs_p = _timed(timings, "score patients", match.score_patients, pt, u)
    pairs_e = _timed(timings, "score enquiries", match.score_enquiries, et, pt, u)
    none = pl.DataFrame(schema=decisions.SCHEMA)
    person_of = _timed(timings, "persons", resolve.persons, pt["patient_key"], pairs_p, none,
                       auto_link_probability=SETTINGS["auto_link_probability"])  # fmt: skip
    outcomes = _timed(
        timings, "outcomes", resolve.enquiry_outcomes, et, pairs_e, person_of,
        resolve.phone_index(pt, person_of), none, **SETTINGS, auto_link_margin_weight=3.0,
    )  # fmt: skip
    total = time.perf_counter() - started
    peer = _timed(timings, "peer", _exact_rule, pt, et)

    truth = requests.select("enquiry_key", requester="person_id")
    true_of = patients.select("patient_key", true_person="person_id")
    reviewed = outcomes.filter(pl.col("match_outcome") == "partial").height
    linked = outcomes.filter(pl.col("match_outcome") == "exact").join(truth, on="enquiry_key")
    linked = linked.join(true_of, on="patient_key")
    right = linked.filter(pl.col("true_person") == pl.col("requester")).height
    peer_right = (
        peer.join(truth, on="enquiry_key").join(true_of, on="patient_key")
        .filter(pl.col("true_person") == pl.col("requester")).height
    )  # fmt: skip
    should = truth.filter(pl.col("requester").is_not_null()).height
    steps = "  ".join(f"{name}={seconds:.1f}s" for name, seconds in timings.items())
    print(
        f"persons={n_persons:>9,} patients={len(pt):>9,} enquiries={len(et):>7,}  "
        f"chairside={total:6.1f}s ({len(et) / total:,.0f} enquiries/s) "
        f"auto-linked={linked.height / len(et):.1%} precision={right / max(linked.height, 1):.4f} "
        f"recall(auto)={right / should:.3f} to review={reviewed / len(et):.1%}  |  "
        f"peer exact rule={timings['peer']:.1f}s recall={peer_right / should:.3f}\n    {steps}"
    )


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or SIZES
    for n_persons in sizes:
        bench(n_persons)


if __name__ == "__main__":
    main()
