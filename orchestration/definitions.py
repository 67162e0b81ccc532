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
from orchestration.writeback_assets import (
    build_writeback_asset,
    build_writeback_job,
    build_writeback_schedule,
    build_writeback_sensor,
    writeback_operator,
)


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
    writeback = build_writeback_asset()
    writeback_job = build_writeback_job(writeback)
    return dg.Definitions(
        assets=[*assets, dbt_assets, report, writeback],
        jobs=[*jobs, writeback_job, writeback_operator],
        schedules=[*schedules, build_writeback_schedule(organisation, writeback_job)],
        sensors=[
            build_transform_sensor(dbt_assets, report),
            build_review_decisions_sensor(dbt_assets),
            build_writeback_sensor(writeback_job),
        ],
        resources=build_resources(),
        executor=dg.in_process_executor,
    )
