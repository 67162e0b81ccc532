"""From scored pairs to answers: group-level persons, and one outcome per enquiry.

Persons: patient records are one person when a pair scores at least the automatic threshold,
agrees on the names and does not contradict on the birth date, or when a reviewer merged them;
a reviewer's ``not_same`` removes the pair. Records joined through a chain of such pairs are one
person (connected components, splink's clustering).

Enquiries (``enquiry_outcomes``):
- a reviewer's ``link`` / ``no_match`` decides first (``decided_by`` = reviewer);
- a named enquiry (first and last name) is **exact** when its best candidate person scores at
  least ``auto_link_probability``, agrees on the names, and leads the next person by
  ``auto_link_margin_weight``; **partial** (review queue) when its best person scores at least
  ``review_probability``; otherwise **none** (a new-patient candidate);
- a phone-only enquiry (a call or text) resolves to the **household** of patients carrying its
  number, and to one person (**exact**, ``decided_by`` = phone) only when exactly one person
  carries it; **none** when no patient does.
Every enquiry whose number a patient carries gets that number's ``household_id``.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl
from splink import DuckDBAPI
from splink.clustering import cluster_pairwise_predictions_at_threshold

from transforms.identity.decisions import current

OUTCOME_SCHEMA = {
    "enquiry_key": pl.String,
    "match_outcome": pl.String,  # exact | partial | none | household
    "person_id": pl.String,
    "patient_key": pl.String,
    "household_id": pl.String,
    "match_probability": pl.Float64,
    "match_weight": pl.Float64,
    "margin_weight": pl.Float64,
    "candidate_persons": pl.Int64,
    "decided_by": pl.String,  # model | phone | reviewer
}


def _hash_id(prefix: str, column: str) -> pl.Expr:
    return prefix + pl.col(column).map_elements(
        lambda v: hashlib.md5(v.encode()).hexdigest()[:16], return_dtype=pl.String
    )


# --- persons -----------------------------------------------------------------------------


def persons(
    patient_keys: pl.Series,
    pairs: pl.DataFrame,
    decisions: pl.DataFrame,
    *,
    auto_link_probability: float,
) -> pl.DataFrame:
    """patient_key -> person_id (a stable hash of the cluster's smallest key), merged_by."""
    decided = current(decisions)
    merges = decided.filter(pl.col("action") == "merge").select(
        left_key="subject_key", right_key="object_key"
    )
    refused = decided.filter(pl.col("action") == "not_same").select(
        left_key="subject_key", right_key="object_key"
    )
    automatic = (
        pairs.filter(
            (pl.col("match_probability") >= auto_link_probability)
            & pl.col("names_agree")
            & ~pl.col("explanation").str.contains("birth date: different", literal=True)
        )
        .select(
            left_key=pl.min_horizontal("left_key", "right_key"),
            right_key=pl.max_horizontal("left_key", "right_key"),
        )
        .join(refused, on=["left_key", "right_key"], how="anti")
    )
    edges = pl.concat(
        [automatic.with_columns(by=pl.lit("model")), merges.with_columns(by=pl.lit("reviewer"))]
    ).filter(pl.col("left_key").is_in(patient_keys) & pl.col("right_key").is_in(patient_keys))
    nodes = patient_keys.unique().to_frame("patient_key")
    clusters = _components(nodes, edges)
    by_reviewer = pl.concat(
        [edges.filter(pl.col("by") == "reviewer")[c] for c in ("left_key", "right_key")]
    )
    by_model = pl.concat(
        [edges.filter(pl.col("by") == "model")[c] for c in ("left_key", "right_key")]
    )
    return clusters.with_columns(
        person_id=_hash_id("P", "cluster_key"),
        merged_by=pl.when(pl.col("patient_key").is_in(by_reviewer))
        .then(pl.lit("reviewer"))
        .when(pl.col("patient_key").is_in(by_model))
        .then(pl.lit("model")),
    ).select("patient_key", "person_id", "merged_by")


def _components(nodes: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """patient_key -> cluster_key (the smallest patient_key of its connected component)."""
    if edges.is_empty():
        return nodes.with_columns(cluster_key=pl.col("patient_key"))
    api = DuckDBAPI(connection=duckdb.connect())
    clustered = cluster_pairwise_predictions_at_threshold(
        nodes.rename({"patient_key": "unique_id"}).to_arrow(),
        edges.select(
            unique_id_l="left_key", unique_id_r="right_key", match_probability=pl.lit(1.0)
        ).to_arrow(),
        db_api=api,
        node_id_column_name="unique_id",
        threshold_match_probability=0.5,
    )
    frame = pl.from_arrow(clustered.as_pyarrow_table()).select(
        patient_key="unique_id", cluster="cluster_id"
    )
    return frame.with_columns(cluster_key=pl.col("patient_key").min().over("cluster")).select(
        "patient_key", "cluster_key"
    )


# --- enquiries ---------------------------------------------------------------------------


def phone_index(patient_traits: pl.DataFrame, person_of: pl.DataFrame) -> pl.DataFrame:
    """phone_e164 -> the persons (and patient records) carrying it, across the group."""
    return (
        patient_traits.select("patient_key", "phones")
        .explode("phones")
        .drop_nulls("phones")
        .rename({"phones": "phone_e164"})
        .join(person_of.select("patient_key", "person_id"), on="patient_key")
    )


def enquiry_outcomes(
    enquiries: pl.DataFrame,
    pairs: pl.DataFrame,
    person_of: pl.DataFrame,
    phones: pl.DataFrame,
    decisions: pl.DataFrame,
    *,
    auto_link_probability: float,
    review_probability: float,
    auto_link_margin_weight: float,
) -> pl.DataFrame:
    """One row per enquiry (``enquiries``: enquiry traits) with its outcome (OUTCOME_SCHEMA)."""
    decided = current(decisions)
    refused = decided.filter(pl.col("action") == "not_same").select(
        pl.min_horizontal("subject_key", "object_key").alias("a"),
        pl.max_horizontal("subject_key", "object_key").alias("b"),
    )
    candidates = (
        pairs.with_columns(
            a=pl.min_horizontal("left_key", "right_key"),
            b=pl.max_horizontal("left_key", "right_key"),
        )
        .join(refused, on=["a", "b"], how="anti")
        .join(person_of, left_on="right_key", right_on="patient_key")
        .rename({"left_key": "enquiry_key", "right_key": "patient_key"})
    )
    best = _best_persons(candidates)
    model = best.select(
        "enquiry_key",
        "person_id",
        "patient_key",
        "match_probability",
        "match_weight",
        "margin_weight",
        "candidate_persons",
        match_outcome=pl.when(
            (pl.col("match_probability") >= auto_link_probability)
            & pl.col("names_agree")
            & (pl.col("margin_weight") >= auto_link_margin_weight)
        )
        .then(pl.lit("exact"))
        .when(pl.col("match_probability") >= review_probability)
        .then(pl.lit("partial"))
        .otherwise(pl.lit("none")),
    )

    holders = phones.group_by("phone_e164").agg(
        persons=pl.col("person_id").n_unique(),
        person_id=pl.col("person_id").min(),
        patient_key=pl.col("patient_key").min(),
    )
    base = enquiries.select("enquiry_key", "is_named", phone_e164="phone_1").join(
        holders, on="phone_e164", how="left"
    )
    by_phone = base.select(
        "enquiry_key",
        household_id=pl.when(pl.col("persons") > 0).then(_hash_id("H", "phone_e164")),
        phone_outcome=pl.when(pl.col("persons") == 1)
        .then(pl.lit("exact"))
        .when(pl.col("persons") > 1)
        .then(pl.lit("household"))
        .otherwise(pl.lit("none")),
        phone_person=pl.when(pl.col("persons") == 1).then("person_id"),
        phone_patient=pl.when(pl.col("persons") == 1).then("patient_key"),
        phone_persons=pl.col("persons").fill_null(0).cast(pl.Int64),
        is_named="is_named",
    )

    result = by_phone.join(model, on="enquiry_key", how="left").select(
        "enquiry_key",
        "household_id",
        match_outcome=pl.when(pl.col("is_named"))
        .then(pl.col("match_outcome").fill_null("none"))
        .otherwise("phone_outcome"),
        person_id=pl.when(pl.col("is_named"))
        .then(pl.when(pl.col("match_outcome") == "exact").then("person_id"))
        .otherwise("phone_person"),
        patient_key=pl.when(pl.col("is_named"))
        .then(pl.when(pl.col("match_outcome") == "exact").then("patient_key"))
        .otherwise("phone_patient"),
        match_probability="match_probability",
        match_weight="match_weight",
        margin_weight="margin_weight",
        candidate_persons=pl.when(pl.col("is_named"))
        .then(pl.col("candidate_persons").fill_null(0))
        .otherwise("phone_persons"),
        decided_by=pl.when(pl.col("is_named")).then(pl.lit("model")).otherwise(pl.lit("phone")),
    )
    return _apply_verdicts(result, decided, person_of).select(list(OUTCOME_SCHEMA))


def _best_persons(candidates: pl.DataFrame) -> pl.DataFrame:
    """Per enquiry: its best person (the best-scoring record of each person), the margin to
    the second person in match weight, and how many persons are candidates."""
    per_person = (
        candidates.sort("match_weight", descending=True)
        .group_by("enquiry_key", "person_id", maintain_order=True)
        .first()
    )
    ranked = per_person.with_columns(
        rank=pl.col("match_weight").rank("ordinal", descending=True).over("enquiry_key"),
        candidate_persons=pl.len().over("enquiry_key").cast(pl.Int64),
    )
    second = ranked.filter(pl.col("rank") == 2).select("enquiry_key", second_weight="match_weight")
    return (
        ranked.filter(pl.col("rank") == 1)
        .join(second, on="enquiry_key", how="left")
        .with_columns(
            margin_weight=(pl.col("match_weight") - pl.col("second_weight")).fill_null(float("inf"))
        )
    )


def _apply_verdicts(
    result: pl.DataFrame, decided: pl.DataFrame, person_of: pl.DataFrame
) -> pl.DataFrame:
    verdicts = (
        decided.filter(pl.col("action").is_in(["link", "no_match"]))
        .select("action", enquiry_key="subject_key", linked_patient="object_key")
        .join(person_of.rename({"patient_key": "linked_patient", "person_id": "linked_person"}),
              on="linked_patient", how="left")
    )  # fmt: skip
    joined = result.join(verdicts, on="enquiry_key", how="left")
    link = pl.col("action") == "link"
    no_match = pl.col("action") == "no_match"
    return joined.with_columns(
        match_outcome=pl.when(link)
        .then(pl.lit("exact"))
        .when(no_match)
        .then(pl.lit("none"))
        .otherwise("match_outcome"),
        person_id=pl.when(link)
        .then("linked_person")
        .when(no_match)
        .then(None)
        .otherwise("person_id"),
        patient_key=pl.when(link)
        .then("linked_patient")
        .when(no_match)
        .then(None)
        .otherwise("patient_key"),
        decided_by=pl.when(pl.col("action").is_not_null())
        .then(pl.lit("reviewer"))
        .otherwise("decided_by"),
    )
