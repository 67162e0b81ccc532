"""One asset per extracted entity of every vendor, partitioned by connection: a failing
connection fails only its own partition, and ops can sync one office or account alone."""

# No `from __future__ import annotations` here: Dagster reads the real types of asset parameters.
from typing import Literal

import dagster as dg
from pydantic import Field

from extract.connectors import Connector
from orchestration.resources import ChairsideResource


class SyncConfig(dg.Config):
    mode: Literal["incremental", "full"] = Field(
        default="incremental",
        description="incremental: changes since the cursor (with overlap); full: re-read all",
    )


def landing_group(vendor: str) -> str:
    return f"{vendor}_landing"


def landing_key(vendor: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", vendor, entity])


def build_landing_assets(
    connector: Connector, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    return [_entity_asset(connector, entity, partitions) for entity in connector.entities]


# No Dagster RetryPolicy: the HTTP layer already retries with backoff, and a failed sync
# resumes from its checkpoint on the next run; a second retry layer only multiplies the waits.
def _entity_asset(
    connector: Connector, entity: str, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    vendor = connector.vendor
    key = landing_key(vendor, entity)
    parent = connector.parents.get(entity)

    @dg.asset(
        key=key,
        deps=[landing_key(vendor, parent)] if parent else [],
        partitions_def=partitions,
        group_name=landing_group(vendor),
        kinds={"python", "parquet"},
        description=f"{connector.entities[entity]}, landed untouched as Parquet batches with "
        "load metadata.",
        check_specs=[
            dg.AssetCheckSpec(
                "contract", asset=key, description="Records that broke the contract (quarantined)"
            )
        ],
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig, chairside: ChairsideResource):
        connection = chairside.organisation().connection(context.partition_key)
        result = connector.sync_entity(
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
