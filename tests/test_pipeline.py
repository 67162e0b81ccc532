"""The whole pipeline through Dagster: simulator -> extraction assets -> landing -> dbt -> DuckDB.

These tests load the real Definitions, run the real sync job per office and the real dbt
build, then compare the warehouse's staging tables with the simulator's world, row for row.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from chairside.verify import compare_staging_to_truth
from extract.opendental.streams import ENTITIES
from tests.conftest import organisation_for

pytestmark = pytest.mark.slow


@pytest.fixture
def pipeline(opendental, tmp_path, monkeypatch):
    org = organisation_for(opendental, max_attempts=2)
    config = tmp_path / "org.yaml"
    config.write_text(yaml.safe_dump(org.model_dump(mode="json")))
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(config))
    monkeypatch.setenv("CHAIRSIDE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CHAIRSIDE_WAREHOUSE", str(tmp_path / "warehouse" / "chairside.duckdb"))
    from orchestration.definitions import defs

    with dg.instance_for_test() as instance:
        yield Pipeline(defs(), instance, opendental, tmp_path)


class Pipeline:
    def __init__(self, definitions, instance, od, tmp_path: Path):
        self.definitions = definitions
        self.instance = instance
        self.od = od
        self.tmp_path = tmp_path
        self.warehouse = tmp_path / "warehouse" / "chairside.duckdb"

    def sync(self, mode: str, *, raise_on_error: bool = True) -> list[dg.ExecuteInProcessResult]:
        from extract.connectors import connectors
        from orchestration.automation import sync_job_name, sync_run_config

        job = self.definitions.resolve_job_def(sync_job_name("opendental"))
        return [
            job.execute_in_process(
                partition_key=office.key,
                instance=self.instance,
                run_config=sync_run_config(connectors()["opendental"], mode),
                raise_on_error=raise_on_error,
            )
            for office in self.od.world.offices_on("opendental")
        ]

    def sync_tolerant(self) -> list[dg.ExecuteInProcessResult]:
        """An incremental sync of every office that reports failures instead of raising."""
        return self.sync("incremental", raise_on_error=False)

    def transform(self) -> dg.ExecuteInProcessResult:
        from orchestration.dbt_assets import build_dbt_assets
        from orchestration.resources import build_resources

        return dg.materialize(
            [build_dbt_assets()], instance=self.instance, resources=build_resources()
        )

    def diffs(self, offices: list[str] | None = None):
        truth = self.tmp_path / "truth"
        self.od.world.export_truth(truth)
        offices = offices or [o.key for o in self.od.world.offices_on("opendental")]
        return compare_staging_to_truth(self.warehouse, truth, offices)


def test_definitions_wire_landing_assets_to_dbt_staging(pipeline):
    repo = pipeline.definitions
    graph = repo.resolve_asset_graph()
    staging = dg.AssetKey(["stg_opendental__appointments"])
    staging_keys = [k for k in graph.get_all_asset_keys() if k.path[-1] == staging.path[-1]]
    assert len(staging_keys) == 1
    parents = graph.get(staging_keys[0]).parent_keys
    assert dg.AssetKey(["landing", "opendental", "appointments"]) in parents
    landing = graph.get(dg.AssetKey(["landing", "opendental", "patients"]))
    assert landing.partitions_def.get_partition_keys() == ["od_riverside", "od_lakeside"]
    schedules = {s.name: s for s in repo.schedules}
    assert set(schedules) == {
        "opendental_hourly_incremental_sync",
        "opendental_daily_full_sync",
        "daily_writeback",
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())
    dbt_asset = repo.resolve_assets_def(staging_keys[0])
    assert dbt_asset.op.pool == "duckdb_writer"
    # dbt data tests arrive as asset checks.
    assert any(c.asset_key == staging_keys[0] for c in dbt_asset.check_specs)


def test_pipeline_reproduces_the_world_and_follows_it_as_it_changes(pipeline):
    results = pipeline.sync("full")
    assert all(r.success for r in results)
    materialized = {
        (r.dagster_run.tags.get("dagster/partition"), e.asset_key.path[-1])
        for r in results
        for e in r.get_asset_materialization_events()
    }
    assert len(materialized) == 2 * len(ENTITIES)
    transform = pipeline.transform()
    assert transform.success
    assert all(c.passed for c in transform.get_asset_check_evaluations())
    diffs = pipeline.diffs()
    assert [d.table for d in diffs if not d.ok] == [], [d for d in diffs if not d.ok]

    # A second sync with no change in the world changes nothing in the warehouse.
    before = _table_hashes(pipeline.warehouse)
    assert all(r.success for r in pipeline.sync("incremental"))
    assert pipeline.transform().success
    assert _table_hashes(pipeline.warehouse) == before

    # The world moves on: edits (a changed status) appear, nothing is duplicated.
    pipeline.od.world.advance(timedelta(days=3), seed=21)
    assert all(r.success for r in pipeline.sync("incremental"))
    assert pipeline.transform().success
    diffs = pipeline.diffs()
    assert [d.table for d in diffs if not d.ok] == [], [d for d in diffs if not d.ok]
    assert _table_hashes(pipeline.warehouse) != before


def _table_hashes(warehouse: Path) -> dict[str, int]:
    """An order-independent hash of every staging table's business columns."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'staging'"
        ).fetchall()]  # fmt: skip
        hashes = {}
        for table in tables:
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'staging' and table_name = ? and column_name not in ('_load_id', "
                "'_extracted_at', 'load_id', 'extracted_at')", [table]
            ).fetchall()]  # fmt: skip
            select = ", ".join(f'"{c}"' for c in columns)
            hashes[table] = con.execute(
                f"select bit_xor(hash({select})) from staging.{table}"
            ).fetchone()[0]
        return hashes


def test_a_failing_office_leaves_the_other_offices_fresh(pipeline):
    from simulators.faults import FaultRule

    assert all(r.success for r in pipeline.sync("full"))
    assert pipeline.transform().success
    pipeline.od.world.advance(timedelta(days=2), seed=8)
    pipeline.od.faults.add(
        FaultRule(path="^/", kind="status", code=503, times=None, office="od_lakeside")
    )
    results = {r.dagster_run.tags["dagster/partition"]: r for r in pipeline.sync_tolerant()}
    assert results["od_riverside"].success
    assert not results["od_lakeside"].success
    assert pipeline.transform().success

    diffs = {d.table: d for d in pipeline.diffs(offices=["od_riverside"])}
    assert all(d.ok for d in diffs.values()), diffs
    stale = {d.table: d for d in pipeline.diffs(offices=["od_lakeside"])}
    assert not stale["appointments"].ok  # lakeside keeps its last good data until it recovers
