"""dbt models as Dagster assets; dbt tests become asset checks.

Every warehouse writer runs in the ``duckdb_writer`` pool (limit 1, set in dagster.yaml):
DuckDB allows one writing process, and extraction never needs the lock because it writes
Parquet to the landing zone.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from chairside import paths

WAREHOUSE_POOL = "duckdb_writer"


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=paths.DBT_PROJECT_DIR, profiles_dir=paths.DBT_PROJECT_DIR)
    project.prepare_if_dev()
    if not project.manifest_path.exists():
        # Outside `dagster dev` nothing parses the project for us (tests, CI, the demo).
        project.preparer.prepare(project)
    return project


class ChairsideTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: dict[str, Any]) -> str | None:
        # models/staging/opendental/x.sql -> "staging"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"

    def get_automation_condition(self, dbt_resource_props: dict[str, Any]):
        # Rebuild once new data has landed and no upstream sync is still running.
        return dg.AutomationCondition.eager()


@cache
def build_dbt_assets() -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=ChairsideTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def chairside_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        # dbt reads these through env_var() in profiles.yml and the sources.
        os.environ.setdefault("CHAIRSIDE_LANDING", str(paths.landing_root()))
        os.environ.setdefault("CHAIRSIDE_WAREHOUSE", str(paths.warehouse_path()))
        paths.warehouse_path().parent.mkdir(parents=True, exist_ok=True)
        yield from dbt.cli(["build"], context=context).stream()

    return chairside_dbt
