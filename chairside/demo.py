"""`make demo`: the whole pipeline, end to end, against the local vendor simulators.

1. starts every simulator (one seeded dental group: Open Dental, CareStack and NexHealth
   offices, a phone system, a card processor, QuickBooks) on loopback;
2. runs each vendor's Dagster sync job once per connection (full sync), landing Parquet;
3. runs dbt (staging, canonical model, patient identity, marts; tests as asset checks) into the
   DuckDB warehouse;
4. writes back what the config enables (online payments to the PMS ledgers, text confirmations
   and cancellations, call summaries), syncs the PMSs again and rebuilds, so the marts show
   the writes reconciled;
5. exports every simulator's truth and checks Open Dental staging against it, row for row;
6. prints row counts, matching outcomes, step timings and where everything is.

CHAIRSIDE_DEMO_ROOT moves the demo's files; CHAIRSIDE_DEMO_PERSONS sizes the group.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import httpx
from rich.console import Console
from rich.table import Table

from chairside import paths
from chairside.simulator_process import point_demo_config_at, simulators

# Where the demo's landing zone and warehouse go (tests point it at a temporary folder).
DEMO_ROOT = Path(os.environ.get("CHAIRSIDE_DEMO_ROOT", paths.REPO_ROOT / "var" / "demo"))
# Size of the simulated group (persons; about 1.05 patient records each).
PERSONS = int(os.environ.get("CHAIRSIDE_DEMO_PERSONS", "400"))
# Dagster's console logger at WARNING: the summary below says what happened; the full event log
# is in the run storage for `make ui`.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
console = Console(width=110)  # wide enough for model names when output is not a terminal


def main() -> None:
    landing = DEMO_ROOT / "landing"
    warehouse = DEMO_ROOT / "warehouse" / "chairside.duckdb"
    shutil.rmtree(DEMO_ROOT, ignore_errors=True)  # every demo starts from an empty platform
    os.environ["CHAIRSIDE_LANDING"] = str(landing)
    os.environ["CHAIRSIDE_WAREHOUSE"] = str(warehouse)
    os.environ["CHAIRSIDE_DECISIONS"] = str(DEMO_ROOT / "decisions" / "identity.jsonl")
    os.environ["CHAIRSIDE_OUTBOX"] = str(DEMO_ROOT / "writeback" / "outbox.sqlite")
    for name in ("CHAIRSIDE_ANALYST_COPY", "CHAIRSIDE_REPORT"):  # beside the demo's warehouse
        os.environ.pop(name, None)
    os.environ["CHAIRSIDE_OD_RPS"] = "100"  # the simulators are started with a higher limit
    truth = DEMO_ROOT / "truth"
    timings: list[tuple[str, float]] = []

    started = time.monotonic()
    with simulators(rps=200, persons=PERSONS) as urls:
        timings.append(("start the vendor simulators", time.monotonic() - started))
        point_demo_config_at(urls)
        for vendor, url in urls.items():
            console.print(f"[bold]{vendor} simulator[/] listening on {url}")
        url = urls["opendental"]

        from extract.connectors import connectors
        from orchestration.automation import sync_job_name, sync_run_config
        from orchestration.dbt_assets import build_dbt_assets
        from orchestration.definitions import defs
        from orchestration.resources import build_resources

        step = time.monotonic()
        definitions = defs()
        timings.append(("load Dagster definitions (dbt parse)", time.monotonic() - step))

        instance = dg.DagsterInstance.get()
        landed: dict[tuple[str, str], int] = {}  # (vendor, entity) -> rows, all connections

        def sync(vendors, mode: str) -> None:
            for vendor, connector in connectors().items():
                if vendor not in vendors:
                    continue
                job = definitions.resolve_job_def(sync_job_name(vendor))
                for connection_id in job.partitions_def.get_partition_keys():
                    step = time.monotonic()
                    result = job.execute_in_process(
                        partition_key=connection_id,
                        instance=instance,
                        run_config={**sync_run_config(connector, mode), **QUIET},
                    )
                    for event in result.get_asset_materialization_events():
                        entity = event.asset_key.path[-1]
                        rows = event.event_specific_data.materialization.metadata["rows"].value
                        landed[(vendor, entity)] = landed.get((vendor, entity), 0) + rows
                    timings.append(
                        (f"{mode} sync {vendor} {connection_id} "
                         f"({len(connector.entities)} entities)", time.monotonic() - step)
                    )  # fmt: skip

        def build(label: str) -> list[str]:
            step = time.monotonic()
            dbt_result = dg.materialize(
                [build_dbt_assets()],
                instance=instance,
                resources=build_resources(),
                run_config=QUIET,
            )
            checks = dbt_result.get_asset_check_evaluations()
            timings.append(
                (f"{label} ({len(checks)} tests as asset checks)", time.monotonic() - step)
            )
            return [c.check_name for c in checks if not c.passed]

        sync(set(urls), "full")
        od_connections = definitions.resolve_job_def(sync_job_name("opendental"))
        od_connections = od_connections.partitions_def.get_partition_keys()
        failed_checks = build("dbt build")

        step = time.monotonic()
        from orchestration.writeback_assets import build_writeback_asset

        writeback = dg.materialize([build_writeback_asset()], instance=instance, run_config=QUIET)
        timings.append(("write back (plan from the marts, send)", time.monotonic() - step))
        writeback_checks = writeback.get_asset_check_evaluations()
        failed_checks += [c.check_name for c in writeback_checks if not c.passed]
        # The writes are in the PMSs now: sync them in and rebuild, as the hourly sync would.
        sync({"opendental", "nexhealth"} & set(urls), "incremental")
        failed_checks += build("dbt build after the writeback")

        step = time.monotonic()
        from orchestration.report_assets import build_report_asset

        # Reads the analysts' copy the dbt asset has just published.
        dg.materialize([build_report_asset()], instance=instance, run_config=QUIET)
        timings.append(("HTML report from the analysts' copy", time.monotonic() - step))

        step = time.monotonic()
        # Every simulator's truth (the world and what each derived from it), kept for analysts
        # comparing marts with what really happened, and for the tests.
        for vendor, vendor_url in urls.items():
            httpx.post(
                f"{vendor_url}/_sim/export", json={"dir": str(truth / vendor)}, timeout=120
            ).raise_for_status()
        from chairside.verify import compare_staging_to_truth

        diffs = compare_staging_to_truth(warehouse, truth / "opendental", od_connections)
        timings.append(("compare staging with the simulator's world", time.monotonic() - step))

    _print_counts(warehouse, landed)
    _print_canonical(warehouse)
    _print_identity(warehouse)
    _print_funnel(warehouse)
    _print_writeback(warehouse)
    _print_timings(timings, time.monotonic() - started)
    _print_verification(diffs, failed_checks)  # Open Dental staging vs the world
    console.print(
        f"\n[bold]Warehouse[/]  {warehouse}\n"
        f"[bold]Landing[/]    {landing}  (Parquet batches + _state.sqlite cursors)\n"
        f"[bold]Truth[/]      {truth}  (what the simulated world really holds, per simulator)\n"
        f"[bold]Analysts[/]   {warehouse.with_name('analyst.duckdb')}  (read-only copy of the "
        "marts, refreshed after each build; open it with any DuckDB client)\n"
        f"[bold]Report[/]     {paths.report_path()}  (`chairside report` rewrites it)\n"
        f"[bold]Review[/]     `chairside review list` shows the identity review queue\n"
        f"[bold]Writeback[/]  {paths.outbox_path()}  (the outbox; `chairside writeback list`)\n"
        f"[bold]Dagster[/]    runs recorded in {os.environ.get('DAGSTER_HOME', '(ephemeral)')}; "
        "`make ui` opens them\n"
        f'[bold]Query[/]      .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{warehouse}', read_only=True).sql('from staging.stg_opendental__appointments "
        "limit 5'))\""
    )
    if failed_checks or not all(d.ok for d in diffs):
        raise SystemExit(1)


def _print_counts(warehouse: Path, landed: dict[tuple[str, str], int]) -> None:
    table = Table(title="Rows per landed and staged table")
    table.add_column("table")
    table.add_column("landed (all connections)", justify="right")
    table.add_column("warehouse rows", justify="right")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema <> 'intermediate' order by table_schema, table_name"
        ).fetchall()
        for schema, name in names:
            count = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            vendor, _, entity = name.removeprefix("stg_").partition("__")
            landed_rows = landed.get((vendor, entity))
            shown = "" if landed_rows is None else str(landed_rows)
            table.add_row(f"{schema}.{name}", shown, str(count))
    console.print(table)


def _print_canonical(warehouse: Path) -> None:
    """The canonical model: each entity's rows, by the source system that fed them."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = "
            "'intermediate' and table_name like 'int\\_%' escape '\\' "
            "and table_name not like '%\\_\\_%' escape '\\' order by 1"
        ).fetchall()]  # fmt: skip
        counts = {
            table: dict(con.execute(
                f"select source_system, count(*) from intermediate.{table} group by 1"
            ).fetchall())
            for table in tables
        }  # fmt: skip
    systems = sorted({system for per_table in counts.values() for system in per_table})
    table = Table(title="Canonical model: rows by source system")
    table.add_column("entity")
    for system in systems:
        table.add_column(system, justify="right")
    for name, per_system in counts.items():
        table.add_row(name, *(str(per_system.get(s, "")) for s in systems))
    console.print(table)


def _print_identity(warehouse: Path) -> None:
    """Who the enquiries are: matching outcomes per kind of enquiry, and the review queue."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        outcomes = con.execute(
            "select enquiry_type, match_outcome, count(*) from identity.identity_enquiries "
            "group by all order by all"
        ).fetchall()
        queue = con.execute(
            "select item_kind, count(distinct subject_key) from identity.identity_review_queue "
            "group by all order by all"
        ).fetchall()
        records, persons = con.execute(
            "select count(*), count(distinct person_id) from identity.identity_patient_persons"
        ).fetchone()
    kinds = ("exact", "partial", "household", "none")
    table = Table(title="Patient identity: enquiries by matching outcome")
    table.add_column("enquiry")
    for kind in kinds:
        table.add_column(kind, justify="right")
    per_type: dict[str, dict[str, int]] = {}
    for enquiry_type, outcome, count in outcomes:
        per_type.setdefault(enquiry_type, {})[outcome] = count
    for enquiry_type, counts in per_type.items():
        table.add_row(enquiry_type, *(str(counts.get(k, "")) for k in kinds))
    console.print(table)
    names = {"enquiry": "enquiries", "patient_pair": "patient pairs"}
    waiting = ", ".join(f"{count} {names[kind]}" for kind, count in queue) or "empty"
    console.print(
        f"{records} patient records are {persons} people across the group; review queue: {waiting}."
    )


def _print_funnel(warehouse: Path) -> None:
    """The lead funnel by channel, every cohort (docs/lead-funnel.md)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select channel, count(*), count(first_contact_at), count(booked_at), "
            "count(checked_out_at), count(*) filter (where lost_reason is not null), "
            "round(median(minutes_to_first_contact)) "
            "from marts.fct_lead_journeys group by channel order by channel"
        ).fetchall()
    table = Table(title="Lead funnel: journeys by first channel")
    for column in ("channel", "leads", "contacted", "booked", "checked out", "lost",
                   "median minutes to contact"):  # fmt: skip
        table.add_column(column, justify="left" if column == "channel" else "right")
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


def _print_writeback(warehouse: Path) -> None:
    """What was written back, by kind and state (marts.fct_writebacks, after the rebuild)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select kind, connection_id, state, count(*) from marts.fct_writebacks "
            "group by all order by all"
        ).fetchall()
    table = Table(title="Writebacks (exactly once; docs/writeback.md)")
    for column in ("kind", "connection", "state", "writes"):
        table.add_column(column, justify="right" if column == "writes" else "left")
    for row in rows:
        table.add_row(*(str(value) for value in row))
    console.print(table)


def _print_timings(timings: list[tuple[str, float]], total: float) -> None:
    table = Table(title="Timings")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in timings:
        table.add_row(name, f"{seconds:.1f}")
    table.add_row("[bold]total[/]", f"[bold]{total:.1f}[/]")
    console.print(table)


def _print_verification(diffs, failed_checks: list[str]) -> None:
    bad = [d for d in diffs if not d.ok]
    rows = sum(d.truth_rows for d in diffs)
    if not bad:
        console.print(
            f"[green]Staging equals the simulator's world[/]: {len(diffs)} tables, "
            f"{rows} rows, every column compared."
        )
    for diff in bad:
        console.print(
            f"[red]{diff.table}[/]: {diff.missing} missing, {diff.extra} extra, "
            f"mismatched columns {diff.mismatched}"
        )
    if failed_checks:
        console.print(f"[red]failed dbt tests[/]: {failed_checks}")


if __name__ == "__main__":
    main()
