"""The Fellegi-Sunter model that scores a pair of records as the same person (splink 5).

Both sides of every comparison carry the columns of ``TRAITS``: an enquiry (online request) or a
patient record, standardised by ``transforms.identity.traits``. The comparisons and their
levels are fixed here; their m and u probabilities are estimated by ``transforms.identity.train``
on a seeded world whose truth is known and saved to ``model.json`` beside this file, so scores
are the same on every run and every machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

MODEL_PATH = Path(__file__).with_name("model.json")

# Columns of the records splink compares (both datasets).
TRAITS = (
    "unique_id",
    "first_name",
    "first_name_forms",
    "last_name",
    "birth_date",
    "email",
    "phone_1",
    "phone_2",
    "phones",
)

FIRST_NAME = cl.CustomComparison(
    output_column_name="first_name",
    comparison_description="first name",
    comparison_levels=[
        cll.NullLevel("first_name"),
        cll.ExactMatchLevel("first_name").configure(label_for_charts="exact"),
        cll.ArrayIntersectLevel("first_name_forms", min_intersection=1).configure(
            label_for_charts="nickname-equivalent"
        ),
        cll.JaroWinklerLevel("first_name", 0.92).configure(label_for_charts="one typo"),
        cll.JaroWinklerLevel("first_name", 0.80).configure(label_for_charts="similar"),
        cll.ElseLevel().configure(label_for_charts="different"),
    ],
)

LAST_NAME = cl.CustomComparison(
    output_column_name="last_name",
    comparison_description="last name",
    comparison_levels=[
        cll.NullLevel("last_name"),
        # Term frequencies: agreeing on "smith" says less than agreeing on "quigley".
        cll.ExactMatchLevel("last_name", term_frequency_adjustments=True).configure(
            label_for_charts="exact"
        ),
        cll.JaroWinklerLevel("last_name", 0.92).configure(label_for_charts="one typo"),
        cll.JaroWinklerLevel("last_name", 0.80).configure(label_for_charts="similar"),
        cll.ElseLevel().configure(label_for_charts="different"),
    ],
)

BIRTH_DATE = cl.CustomComparison(
    output_column_name="birth_date",
    comparison_description="birth date",
    comparison_levels=[
        cll.NullLevel("birth_date"),
        cll.ExactMatchLevel("birth_date").configure(label_for_charts="exact"),
        cll.CustomLevel(
            # One digit typed wrong, or day and month swapped.
            "damerau_levenshtein(strftime(birth_date_l, '%Y%m%d'), "
            "strftime(birth_date_r, '%Y%m%d')) <= 1 "
            "or (year(birth_date_l) = year(birth_date_r) "
            "and month(birth_date_l) = day(birth_date_r) "
            "and day(birth_date_l) = month(birth_date_r))",
            label_for_charts="one typo or day/month swapped",
        ),
        cll.ElseLevel().configure(label_for_charts="different"),
    ],
)

EMAIL = cl.CustomComparison(
    output_column_name="email",
    comparison_description="email",
    comparison_levels=[
        cll.NullLevel("email"),
        cll.ExactMatchLevel("email").configure(label_for_charts="exact"),
        cll.CustomLevel(
            "split_part(email_l, '@', 1) = split_part(email_r, '@', 1)",
            label_for_charts="same mailbox name, other domain",
        ),
        cll.ElseLevel().configure(label_for_charts="different"),
    ],
)

PHONE = cl.CustomComparison(
    output_column_name="phones",
    comparison_description="phone",
    comparison_levels=[
        cll.NullLevel("phone_1"),
        # A shared household number agrees for every family member: the names and birth date
        # must tell them apart, and the phone alone never links (see ``outcomes``).
        cll.ArrayIntersectLevel("phones", min_intersection=1).configure(
            label_for_charts="a number in common"
        ),
        cll.ElseLevel().configure(label_for_charts="different"),
    ],
)

COMPARISONS = (FIRST_NAME, LAST_NAME, BIRTH_DATE, EMAIL, PHONE)

# Candidate pairs: records sharing a phone, an email, or a name and birth date. A pair no rule
# generates is never scored (it scores as a non-match).
BLOCKING_RULES = (
    block_on("phone_1"),
    "l.phone_1 = r.phone_2",
    "l.phone_2 = r.phone_1",
    block_on("email"),
    block_on("last_name", "birth_date"),
    block_on("first_name", "birth_date"),
    block_on("last_name", "first_name"),
)


def _trained() -> dict[str, list[dict]]:
    """Trained levels per comparison output column (empty before the first training)."""
    if not MODEL_PATH.exists():
        return {}
    trained = json.loads(MODEL_PATH.read_text())
    return {c["output_column_name"]: c["comparison_levels"] for c in trained["comparisons"]}


# u per comparison output column: the chance two different people agree at each non-null
# level, in level order (estimated on the group's own patients: see match.population_u).
UValues = dict[str, list[float]]


def settings(
    link_type: str, probability_two_random_records_match: float, u: UValues | None = None
) -> dict:
    """Splink settings for ``link_type`` ('link_only' enquiries -> patients, 'dedupe_only'
    patients), with the trained m/u probabilities when ``model.json`` exists; ``u`` replaces
    the trained u (a population's chance agreement depends on its size)."""
    creator = SettingsCreator(
        link_type=link_type,
        comparisons=list(COMPARISONS),
        blocking_rules_to_generate_predictions=list(BLOCKING_RULES),
        probability_two_random_records_match=probability_two_random_records_match,
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
    )
    result = creator.get_settings("duckdb").as_dict()
    trained = _trained()
    for comparison in result["comparisons"] if trained else []:
        levels = trained[comparison["output_column_name"]]
        for level, learned in zip(comparison["comparison_levels"], levels, strict=True):
            for key in ("m_probability", "u_probability"):
                if key in learned:
                    level[key] = learned[key]
    for comparison in result["comparisons"] if u else []:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for level, value in zip(levels, u[comparison["output_column_name"]], strict=True):
            level["u_probability"] = value
    return result


def level_weights(u: UValues | None = None) -> dict[str, list[tuple[str, float]]]:
    """(label, match weight log2(m/u)) of every non-null level, per comparison output column:
    splink reports a pair's weight per comparison, and this names the level it came from."""
    result = {}
    for comparison in settings("dedupe_only", 0.5, u)["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        result[comparison["output_column_name"]] = [
            (level["label_for_charts"], math.log2(level["m_probability"] / level["u_probability"]))
            for level in levels
        ]
    return result
