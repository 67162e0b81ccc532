"""Dagster resources. Paths come from environment variables (Dagster ``EnvVar``); connector
secrets are read at run time from the variables the organisation config names."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from chairside import paths
from chairside.config import Organisation, load_organisation


class ChairsideResource(dg.ConfigurableResource):
    """The organisation config and the landing zone the extraction assets write to."""

    config_path: str
    landing_root: str

    def organisation(self) -> Organisation:
        return load_organisation(self.config_path)


def _env_or_default(name: str, default: Path) -> str | dg.EnvVar:
    # EnvVar keeps the value out of code and the UI; fall back to the repo default for dev.
    return dg.EnvVar(name) if os.environ.get(name) else str(default)


def dbt_executable() -> str:
    # The dbt installed beside this Python, even when the venv is not on PATH (tests, CI).
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def build_resources() -> dict:
    return {
        "chairside": ChairsideResource(
            config_path=_env_or_default("CHAIRSIDE_CONFIG", paths.config_path()),
            landing_root=_env_or_default("CHAIRSIDE_LANDING", paths.landing_root()),
        ),
        "dbt": DbtCliResource(
            project_dir=str(paths.DBT_PROJECT_DIR),
            profiles_dir=str(paths.DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
    }
