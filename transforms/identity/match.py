"""Score candidate pairs with splink on an in-memory DuckDB: enquiries against patient records
(link_only) and patient records against each other across the group (dedupe_only).

Returns one row per candidate pair: ``left_key`` (an enquiry or a patient record),
``right_key`` (a patient record), the match weight and probability, ``names_agree`` (the pair
agrees on a first name, or a nickname of it, and a last name, allowing one typo: the automatic
rules never link without it) and ``explanation``, one line a reviewer reads ("first name:
nickname-equivalent (+3.1) | last name: exact (+7.9) | ...").
"""

from __future__ import annotations

import logging
import math

import duckdb
import polars as pl
import pyarrow as pa
from splink import DuckDBAPI, Linker

from transforms.identity import model

# Prior probability that two random records are the same person (before any comparison):
# about 60% of enquiries come from someone already a patient, each matching one of the
# patient records; about 5% of patient records have a twin elsewhere in the group.
ENQUIRY_MATCH_SHARE = 0.6
PATIENT_DUPLICATE_SHARE = 0.05
# Pairs below this probability are not worth keeping (not even for the review queue).
KEEP_PROBABILITY = 0.01
# Random pairs sampled to estimate a group's chance agreement (population_u).
U_SAMPLE_PAIRS = 2_000_000
U_SEED = 20_261_123
U_FLOOR = 1e-9

PAIR_SCHEMA = {
    "left_key": pl.String,
    "right_key": pl.String,
    "match_weight": pl.Float64,
    "match_probability": pl.Float64,
    "names_agree": pl.Boolean,
    "explanation": pl.String,
}

logging.getLogger("splink").setLevel(logging.WARNING)


def _records(frame: pl.DataFrame) -> pa.Table:
    return frame.select(model.TRAITS).to_arrow()


def _linker(
    frames: list[pl.DataFrame],
    link_type: str,
    prior: float,
    u: model.UValues | None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> Linker:
    api = DuckDBAPI(connection=connection or duckdb.connect())
    tables = [
        api.register(_records(frame), dataset_display_name=f"records_{i}")
        for i, frame in enumerate(frames)
    ]
    return Linker(tables, model.settings(link_type, prior, u), log_level=logging.WARNING)


def population_u(patients: pl.DataFrame) -> model.UValues | None:
    """How often two different patients of this group agree by chance, per comparison level,
    from random pairs of its records (seeded: the same records give the same values).

    The model's m (how the same person's records agree) carries over between groups; u does
    not: in a million patients a shared phone number is far rarer than in a thousand, and the
    prior odds of a match are far lower, so both are taken from the group itself.
    """
    if len(patients) < 1_000:  # too few random pairs to say: keep the trained values
        return None
    # A seeded sample is repeatable on one thread.
    linker = _linker([patients], "dedupe_only", 0.5, None, duckdb.connect(config={"threads": 1}))
    linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=U_SEED)
    trained = linker.misc.save_model_to_json()
    return {
        comparison["output_column_name"]: [
            max(level.get("u_probability") or 0.0, U_FLOOR)
            for level in comparison["comparison_levels"]
            if not level.get("is_null_level")
        ]
        for comparison in trained["comparisons"]
    }


def score_enquiries(
    enquiries: pl.DataFrame, patients: pl.DataFrame, u: model.UValues | None = None
) -> pl.DataFrame:
    """Candidate (enquiry, patient record) pairs of the named enquiries."""
    named = enquiries.filter(pl.col("is_named"))
    if named.is_empty() or patients.is_empty():
        return pl.DataFrame(schema=PAIR_SCHEMA)
    prior = min(ENQUIRY_MATCH_SHARE / len(patients), 0.5)
    pairs = _predict(_linker([named, patients], "link_only", prior, u))
    enquiry_keys = set(named["unique_id"].to_list())
    # splink orders a pair by dataset name, not by our sides: put the enquiry on the left.
    swap = ~pl.col("unique_id_l").is_in(enquiry_keys)
    return _finish(
        pairs.with_columns(
            left_key=pl.when(swap).then("unique_id_r").otherwise("unique_id_l"),
            right_key=pl.when(swap).then("unique_id_l").otherwise("unique_id_r"),
        ),
        u,
    )


def score_patients(patients: pl.DataFrame, u: model.UValues | None = None) -> pl.DataFrame:
    """Candidate pairs of patient records (any connection) that may be one person."""
    if len(patients) < 2:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    prior = min(PATIENT_DUPLICATE_SHARE * 2 / len(patients), 0.5)
    pairs = _predict(_linker([patients], "dedupe_only", prior, u))
    return _finish(pairs.rename({"unique_id_l": "left_key", "unique_id_r": "right_key"}), u)


def _predict(linker: Linker) -> pl.DataFrame:
    result = linker.inference.predict(threshold_match_probability=KEEP_PROBABILITY)
    return pl.from_arrow(result.as_pyarrow_table())


def _finish(pairs: pl.DataFrame, u: model.UValues | None) -> pl.DataFrame:
    weights = model.level_weights(u)
    levels = {column: _level_of(column, weights[column]) for column in weights}
    # The automatic rules need the names to agree: first name exact, a nickname or one typo;
    # last name exact or one typo.
    names_agree = levels["first_name"].is_in(["exact", "nickname-equivalent", "one typo"]) & levels[
        "last_name"
    ].is_in(["exact", "one typo"])
    parts = [
        pl.format(
            "{}: {} ({})",
            pl.lit(column.replace("_", " ").removesuffix("s")),
            label.fill_null("missing"),
            _weight(column).round(1).cast(pl.String),
        )
        for column, label in levels.items()
    ]
    return pairs.with_columns(
        names_agree=names_agree.fill_null(False),
        explanation=pl.concat_str(parts, separator=" | "),
    ).select(list(PAIR_SCHEMA))


def _weight(column: str) -> pl.Expr:
    weight = pl.col(f"mw_{column}")
    if column == "last_name":  # the term-frequency adjustment of a common or rare surname
        weight = weight + pl.col("mw_tf_adj_last_name").fill_null(0.0)
    return weight


def _level_of(column: str, weights: list[tuple[str, float]]) -> pl.Expr:
    """The label of the level whose weight splink reported (null: a value was missing)."""
    expr = pl.lit(None, pl.String)
    for label, weight in weights:
        expr = (
            pl.when((pl.col(f"mw_{column}") - weight).abs() < 1e-6)
            .then(pl.lit(label))
            .otherwise(expr)
        )
    return expr


def model_levels(u: model.UValues | None) -> pl.DataFrame:
    """The model as this build scores: one row per comparison level with its m, u and weight."""
    rows = []
    for comparison in model.settings("dedupe_only", 0.5, u)["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for rank, level in enumerate(levels):
            m, u_value = level["m_probability"], level["u_probability"]
            rows.append(
                {
                    "comparison": comparison["output_column_name"],
                    "level_rank": rank,
                    "level": level["label_for_charts"],
                    "m_probability": m,
                    "u_probability": u_value,
                    "match_weight": math.log2(m / u_value),
                }
            )
    return pl.DataFrame(rows)


def u_of(levels: pl.DataFrame) -> model.UValues:
    """``model_levels`` back to the u values scoring takes."""
    ordered = levels.sort("comparison", "level_rank")
    return {
        comparison: group["u_probability"].to_list()
        for (comparison,), group in ordered.group_by("comparison", maintain_order=True)
    }
