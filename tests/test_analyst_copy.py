"""The analysts' read-only copy of the marts: published atomically after a build, readable
while the warehouse is being written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from chairside.analyst_copy import publish

REPO = Path(__file__).resolve().parents[1]
QUERY = "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True); print(c.execute(sys.argv[2]).fetchone()[0])"  # noqa: E501


def query_in_another_process(database: Path, sql: str) -> str:
    result = subprocess.run([sys.executable, "-c", QUERY, str(database), sql],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return result.stdout.strip()


def make_warehouse(path: Path, leads: int) -> None:
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "intermediate", "staging"):
            con.execute(f"create schema if not exists {schema}")
        con.execute("create or replace table marts.agg_leads as select range as n from range(?)",
                    [leads])  # fmt: skip
        con.execute("create or replace table intermediate.int_org_locations as select 'a' as id")
        con.execute("create or replace table intermediate.int_patients as select 'phi' as name")
        con.execute("create or replace table staging.stg_x as select 1 as x")


def test_only_the_marts_are_published_and_readers_keep_their_snapshot(tmp_path):
    warehouse, copy = tmp_path / "warehouse.duckdb", tmp_path / "analyst.duckdb"
    make_warehouse(warehouse, 10)
    rows = publish(warehouse, copy)
    assert rows == {"marts.agg_leads": 10, "intermediate.int_org_locations": 1}
    reader = duckdb.connect(str(copy), read_only=True)
    tables = {r[0] for r in reader.execute("select table_name from duckdb_tables()").fetchall()}
    assert tables == {"agg_leads", "int_org_locations"}  # no patient table, no staging

    make_warehouse(warehouse, 25)
    publish(warehouse, copy)
    # The open reader still reads the copy it opened; a new reader (another process, like an
    # analyst's client) sees the new build.
    assert reader.execute("select count(*) from marts.agg_leads").fetchone()[0] == 10
    assert query_in_another_process(copy, "select count(*) from marts.agg_leads") == "25"
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analyst.duckdb", "warehouse.duckdb"]


@pytest.mark.slow
def test_the_copy_answers_while_dbt_writes_the_warehouse(demo_platform, tmp_path):
    assert demo_platform.returncode == 0, demo_platform.output[-2000:]
    copy = demo_platform.warehouse.with_name("analyst.duckdb")
    assert copy.exists(), "the demo's build published no analyst copy"
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_platform.warehouse, warehouse)
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(demo_platform.root / "landing"),
        "CHAIRSIDE_WAREHOUSE": str(warehouse),
        "CHAIRSIDE_DECISIONS": str(tmp_path / "decisions.jsonl"),
    }
    project = REPO / "dbt_project"
    dbt = subprocess.Popen(
        [str(Path(sys.executable).with_name("dbt")), "build", "--exclude", "resource_type:test",
         "--project-dir", str(project), "--profiles-dir", str(project),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    answered, warehouse_busy = 0, False
    try:
        while dbt.poll() is None:
            query = "select count(*) from marts.agg_lead_funnel"
            result = subprocess.run([sys.executable, "-c", QUERY, str(copy), query],
                                    capture_output=True, text=True, timeout=60)  # fmt: skip
            assert result.returncode == 0, result.stderr
            answered += int(dbt.poll() is None)
            busy = subprocess.run([sys.executable, "-c", QUERY, str(warehouse), "select 1"],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            warehouse_busy |= busy.returncode != 0
            time.sleep(0.5)
    finally:
        dbt.wait(timeout=600)
    assert dbt.returncode == 0
    assert answered >= 3  # queries answered while dbt was still writing
    assert warehouse_busy  # the live warehouse itself refused readers meanwhile
