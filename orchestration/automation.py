"""Jobs, schedules and sensors that ops see and toggle in the UI."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from chairside import paths
from extract.connectors import Connector
from orchestration.extract_assets import landing_group, landing_key


def sync_job_name(vendor: str) -> str:
    return f"{vendor}_sync"


def sync_run_config(connector: Connector, mode: str) -> dict:
    ops = {
        "__".join(landing_key(connector.vendor, entity).path): {"config": {"mode": mode}}
        for entity in connector.entities
    }
    return {"ops": ops}


def build_sync_job(
    connector: Connector, partitions: dg.PartitionsDefinition
) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        sync_job_name(connector.vendor),
        selection=dg.AssetSelection.groups(landing_group(connector.vendor)),
        partitions_def=partitions,
        description=f"Extract every {connector.vendor} entity of one connection "
        "(one partition per connection).",
        config=sync_run_config(connector, "incremental"),
    )


def build_sync_schedules(
    connector: Connector,
    job: dg.UnresolvedAssetJobDefinition,
    connection_ids: list[str],
    *,
    incremental_cron: str,
    full_cron: str,
    timezone: str,
) -> list[dg.ScheduleDefinition]:
    """One run per connection per tick, so one failing office never holds up the others.

    Both start stopped: turning a schedule on starts traffic to vendor APIs, which ops decide.
    """

    def make(name: str, cron: str, mode: str, description: str) -> dg.ScheduleDefinition:
        @dg.schedule(
            name=name,
            job=job,
            cron_schedule=cron,
            execution_timezone=timezone,
            description=description,
            default_status=dg.DefaultScheduleStatus.STOPPED,
        )
        def _schedule(context: dg.ScheduleEvaluationContext):
            tick = context.scheduled_execution_time.isoformat()
            for connection_id in connection_ids:
                yield dg.RunRequest(
                    run_key=f"{name}:{connection_id}:{tick}",
                    partition_key=connection_id,
                    run_config=sync_run_config(connector, mode),
                    tags={"chairside/sync_mode": mode},
                )

        return _schedule

    vendor = connector.vendor
    return [
        make(f"{vendor}_hourly_incremental_sync", incremental_cron, "incremental",
             "Changes since each connection's cursor, with an overlap window."),
        make(f"{vendor}_daily_full_sync", full_cron, "full",
             "Re-read everything: catches edits no change filter exposes and resets cursors."),
    ]  # fmt: skip


def build_transform_sensor(
    *assets: dg.AssetsDefinition,
) -> dg.AutomationConditionSensorDefinition:
    # Runs dbt (and the report after it) once syncs land; it calls no vendor API, so it starts
    # switched on.
    return dg.AutomationConditionSensorDefinition(
        "transform_after_sync",
        target=dg.AssetSelection.assets(*assets),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Rebuilds the dbt models once new data has landed and no sync is running.",
    )


def review_decisions_selection(dbt_assets: dg.AssetsDefinition) -> dg.AssetSelection:
    """What a review decision changes: the decisions model and everything built from it."""
    return build_dbt_asset_selection([dbt_assets], dbt_select="identity_review_decisions+")


def build_review_decisions_sensor(dbt_assets: dg.AssetsDefinition) -> dg.SensorDefinition:
    """Rebuild patient identity and what depends on it when a reviewer records a decision.

    The decisions file lives outside the warehouse and only grows; its size is the cursor, so a
    decision is applied once, on the next tick, whatever else is running.
    """

    @dg.sensor(
        name="apply_review_decisions",
        target=review_decisions_selection(dbt_assets),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Rebuilds identity and the marts after a reviewer records a decision.",
    )
    def apply_review_decisions(context: dg.SensorEvaluationContext):
        path = paths.decisions_path()
        size = path.stat().st_size if path.exists() else 0
        if size == int(context.cursor or 0):
            return dg.SkipReason("no new review decision")
        context.update_cursor(str(size))
        return dg.RunRequest(run_key=f"decisions-{size}")

    return apply_review_decisions
