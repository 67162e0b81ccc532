"""The Dagster code location: ``dagster dev -m orchestration.definitions``."""

from __future__ import annotations

import dagster as dg

from chairside import paths
from chairside.config import load_organisation
from extract.connectors import connectors
from orchestration.automation import (
    build_review_decisions_sensor,
    build_sync_job,
    build_sync_schedules,
    build_transform_sensor,
)
from orchestration.dbt_assets import build_dbt_assets
from orchestration.extract_assets import build_landing_assets
from orchestration.report_assets import build_report_asset
from orchestration.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    organisation = load_organisation(paths.config_path())
    assets, jobs, schedules = [], [], []
    for vendor, connector in connectors().items():
        connection_ids = [c.id for c in organisation.connections if c.vendor == vendor]
        if not connection_ids:
            continue
        partitions = dg.StaticPartitionsDefinition(connection_ids)
        assets += build_landing_assets(connector, partitions)
        job = build_sync_job(connector, partitions)
        jobs.append(job)
        schedules += build_sync_schedules(
            connector,
            job,
            connection_ids,
            incremental_cron=organisation.sync.incremental_cron,
            full_cron=organisation.sync.full_cron,
            timezone=organisation.sync.schedule_timezone,
        )
    dbt_assets = build_dbt_assets()
    report = build_report_asset()
    return dg.Definitions(
        assets=[*assets, dbt_assets, report],
        jobs=jobs,
        schedules=schedules,
        sensors=[
            build_transform_sensor(dbt_assets, report),
            build_review_decisions_sensor(dbt_assets),
        ],
        resources=build_resources(),
        executor=dg.in_process_executor,
    )
