"""Every review decision on identity (link, no_match, not_same, merge), read from the decisions
file outside the warehouse (CHAIRSIDE_DECISIONS; transforms/identity/decisions.py) on every
build, so a rebuild applies them all again."""

from chairside.paths import decisions_path
from transforms.identity.decisions import load


def model(dbt, session):
    dbt.config(materialized="table")
    return load(decisions_path()).to_arrow()
