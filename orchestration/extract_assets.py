"""One asset per extracted entity, partitioned by connection so each office syncs on its own:
# No `from __future__ import annotations` here: Dagster reads the real types of asset parameters.
a failing office fails only its own partition, and ops can run one office alone."""

from typing import Literal

import dagster as dg
from pydantic import Field

from extract.opendental.connector import VENDOR, sync_entity
from extract.opendental.streams import STREAMS
from orchestration.resources import ChairsideResource

GROUP = "opendental_landing"


class SyncConfig(dg.Config):
    mode: Literal["incremental", "full"] = Field(
        default="incremental",
        description="incremental: changes since the cursor (with overlap); full: re-read all",
    )


def opendental_partitions(connection_ids: list[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(connection_ids)


def landing_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", VENDOR, entity])


def build_opendental_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_entity_asset(entity, partitions) for entity in STREAMS]


def _entity_asset(entity: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    stream = STREAMS[entity]
    key = landing_key(entity)
    deps = [landing_key(stream.parent[0])] if stream.parent else []

    @dg.asset(
        key=key,
        deps=deps,
        partitions_def=partitions,
        group_name=GROUP,
        kinds={"python", "parquet"},
        description=f"Open Dental {entity} ({stream.kind} sync of GET {stream.path}), landed "
        "untouched as Parquet batches with load metadata.",
        check_specs=[
            dg.AssetCheckSpec(
                "contract", asset=key, description="Records that broke the contract (quarantined)"
            )
        ],
        retry_policy=dg.RetryPolicy(max_retries=1, delay=30),
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig, chairside: ChairsideResource):
        connection = chairside.organisation().connection(context.partition_key)
        result = sync_entity(
            connection, entity, landing_root=chairside.landing_root, mode=config.mode
        )
        context.log.info(result.summary())
        yield dg.MaterializeResult(
            metadata={
                "mode": result.mode,
                "load_id": result.load_id,
                "resumed": result.resumed,
                "rows": dg.MetadataValue.int(result.rows),
                "quarantined": dg.MetadataValue.int(result.quarantined),
                "batches": result.batches,
                "requests": result.requests,
                "cursor_before": str(result.cursor_before),
                "cursor_after": str(result.cursor_after),
                "seconds": round(result.seconds, 2),
            }
        )
        yield dg.AssetCheckResult(
            check_name="contract",
            passed=result.quarantined == 0,
            severity=dg.AssetCheckSeverity.WARN,
            # Reasons name fields and rules, never values (values may be PHI).
            metadata={"quarantined": result.quarantined, **result.quarantine_reasons},
        )

    return _asset
