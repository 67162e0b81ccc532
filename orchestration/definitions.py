"""The Dagster code location: ``dagster dev -m orchestration.definitions``."""

from __future__ import annotations

import dagster as dg

from chairside import paths
from chairside.config import load_organisation
from orchestration.automation import build_sync_job, build_sync_schedules, build_transform_sensor
from orchestration.dbt_assets import build_dbt_assets
from orchestration.extract_assets import build_opendental_assets, opendental_partitions
from orchestration.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    organisation = load_organisation(paths.config_path())
    connection_ids = [c.id for c in organisation.connections if c.vendor == "opendental"]
    partitions = opendental_partitions(connection_ids)
    extract_assets = build_opendental_assets(partitions)
    dbt_assets = build_dbt_assets()
    sync_job = build_sync_job(partitions)
    return dg.Definitions(
        assets=[*extract_assets, dbt_assets],
        jobs=[sync_job],
        schedules=build_sync_schedules(
            sync_job,
            connection_ids,
            incremental_cron=organisation.sync.incremental_cron,
            full_cron=organisation.sync.full_cron,
            timezone=organisation.sync.schedule_timezone,
        ),
        sensors=[build_transform_sensor(dbt_assets)],
        resources=build_resources(),
        executor=dg.in_process_executor,
    )
