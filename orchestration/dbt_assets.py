"""dbt models as Dagster assets; dbt tests become asset checks.

Every warehouse writer runs in the ``duckdb_writer`` pool (limit 1, set in dagster.yaml):
DuckDB allows one writing process, and extraction never needs the lock because it writes
Parquet to the landing zone.
"""

import os
import subprocess
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from chairside import paths
from chairside.analyst_copy import publish
from chairside.config import load_organisation
from extract.connectors import prepare_landing
from orchestration.resources import dbt_executable

WAREHOUSE_POOL = "duckdb_writer"


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=paths.DBT_PROJECT_DIR, profiles_dir=paths.DBT_PROJECT_DIR)
    # Parse once per process: a manifest left from an earlier parse may miss models added since,
    # and Dagster would then meet dbt results for nodes it does not know.
    subprocess.run(
        [dbt_executable(), "parse", "--quiet", "--project-dir", str(paths.DBT_PROJECT_DIR),
         "--profiles-dir", str(paths.DBT_PROJECT_DIR)],
        check=True,
    )  # fmt: skip
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
        prepare_landing(paths.landing_root(), load_organisation(paths.config_path()))
        yield from dbt.cli(["build"], context=context).stream()
        # Still the warehouse's only writer (pool): refresh the analysts' copy from this build.
        rows = publish(paths.warehouse_path(), paths.analyst_copy_path())
        context.log.info(
            f"analyst copy {paths.analyst_copy_path()} refreshed: {len(rows)} tables, "
            f"{sum(rows.values())} rows"
        )

    return chairside_dbt
