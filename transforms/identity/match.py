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


def _linker(frames: list[pl.DataFrame], link_type: str, prior: float) -> Linker:
    api = DuckDBAPI(connection=duckdb.connect())
    tables = [
        api.register(_records(frame), dataset_display_name=f"records_{i}")
        for i, frame in enumerate(frames)
    ]
    return Linker(tables, model.settings(link_type, prior), log_level=logging.WARNING)


def score_enquiries(enquiries: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Candidate (enquiry, patient record) pairs of the named enquiries."""
    named = enquiries.filter(pl.col("is_named"))
    if named.is_empty() or patients.is_empty():
        return pl.DataFrame(schema=PAIR_SCHEMA)
    prior = min(ENQUIRY_MATCH_SHARE / len(patients), 0.5)
    pairs = _predict(_linker([named, patients], "link_only", prior))
    enquiry_keys = set(named["unique_id"].to_list())
    # splink orders a pair by dataset name, not by our sides: put the enquiry on the left.
    swap = ~pl.col("unique_id_l").is_in(enquiry_keys)
    return _finish(
        pairs.with_columns(
            left_key=pl.when(swap).then("unique_id_r").otherwise("unique_id_l"),
            right_key=pl.when(swap).then("unique_id_l").otherwise("unique_id_r"),
        )
    )


def score_patients(patients: pl.DataFrame) -> pl.DataFrame:
    """Candidate pairs of patient records (any connection) that may be one person."""
    if len(patients) < 2:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    prior = min(PATIENT_DUPLICATE_SHARE * 2 / len(patients), 0.5)
    pairs = _predict(_linker([patients], "dedupe_only", prior))
    return _finish(pairs.rename({"unique_id_l": "left_key", "unique_id_r": "right_key"}))


def _predict(linker: Linker) -> pl.DataFrame:
    result = linker.inference.predict(threshold_match_probability=KEEP_PROBABILITY)
    return pl.from_arrow(result.as_pyarrow_table())


def _finish(pairs: pl.DataFrame) -> pl.DataFrame:
    levels = {column: _level_of(column) for column in model.level_weights()}
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


def _level_of(column: str) -> pl.Expr:
    """The label of the level whose weight splink reported (null: a value was missing)."""
    expr = pl.lit(None, pl.String)
    for label, weight in model.level_weights()[column]:
        expr = (
            pl.when((pl.col(f"mw_{column}") - weight).abs() < 1e-6)
            .then(pl.lit(label))
            .otherwise(expr)
        )
    return expr
