"""Estimate the model's m and u probabilities on a seeded world and save ``model.json``.

    python -m transforms.identity.train [--persons 8000] [--seed 101]

u (how often two different people agree by chance) comes from random pairs of patient records;
m (how often the same person's two records agree) from the true pairs the world labels: online
requests against their requester's patient records, and the same person's records in two
offices. The seed differs from the worlds the tests evaluate on. Rerun after changing a
comparison in ``model.py``; commit the result.
"""

from __future__ import annotations

import argparse
import json
import logging

import duckdb
import polars as pl
from splink import DuckDBAPI, Linker

from simulators.generate import generate_world
from simulators.world import WorldSpec
from transforms.identity import model, traits, world_records

log = logging.getLogger(__name__)


def _register(api: DuckDBAPI, frame: pl.DataFrame, name: str):
    return api.register(
        frame.select(*model.TRAITS, "person_id").to_arrow(), dataset_display_name=name
    )


def train(persons: int, seed: int) -> dict:
    world = generate_world(WorldSpec(seed=seed, n_persons=persons))
    today = world.now_utc.date()
    patients = world_records.patients(world)
    people = traits.patient_traits(patients, region="US", today=today).with_columns(
        person_id=patients["person_id"].cast(pl.String)
    )
    requests = world_records.requests(world)
    asked = (
        traits.enquiry_traits(requests, region="US", today=today)
        .with_columns(person_id=requests["person_id"].cast(pl.String))
        .filter(pl.col("is_named"))
    )

    api = DuckDBAPI(connection=duckdb.connect())
    linker = Linker(
        [_register(api, asked, "requests"), _register(api, people, "patients")],
        model.settings("link_only", 1e-4),
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_m_from_label_column("person_id")
    trained = linker.misc.save_model_to_json()
    sizes = {"persons": persons, "seed": seed, "requests": len(asked), "patients": len(people)}
    return {"comparisons": [_smoothed(c) for c in trained["comparisons"]], "trained_on": sizes}


# No level is impossible: a level the training pairs never showed keeps a small probability,
# so one unseen disagreement cannot veto a pair (its weight stays finite).
FLOOR = {"m_probability": 1e-3, "u_probability": 1e-6}


def _smoothed(comparison: dict) -> dict:
    levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
    for key, floor in FLOOR.items():
        values = [max(level.get(key) or 0.0, floor) for level in levels]
        total = sum(values)
        for level, value in zip(levels, values, strict=True):
            level[key] = value / total
    return comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    result = train(args.persons, args.seed)
    model.MODEL_PATH.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", model.MODEL_PATH)


if __name__ == "__main__":
    main()
