"""Writeback in Dagster: the outbox asset writes what the marts and settings ask for, a refused
write fails the asset check with the vendor's reason, and ops retry or skip it with the
``writeback_operator`` job. Real Dagster runs, a real Open Dental simulator, real files."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
import yaml

from orchestration.writeback_assets import build_writeback_asset, writeback_operator
from tests.conftest import organisation_for
from tests.test_writeback_pms import OD, patients, written
from writeback.outbox import Outbox


def _marts(path, rows: list[tuple]) -> None:
    """The analysts' copy with one writeback mart: online payments ready to post."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            """create table marts.wb_payments (
                charge_key varchar, source_charge_id varchar, processor_connection_id varchar,
                org_location_id varchar, payment_type varchar, created_at timestamptz,
                gross_amount decimal(14,2), fee_amount decimal(14,2), net_amount decimal(14,2),
                refunded_amount decimal(14,2), pms_connection_id varchar, pms_vendor varchar,
                pms_location_ref varchar, source_patient_id varchar, patient_key varchar,
                writeback_state varchar)"""
        )
        con.executemany(
            "insert into marts.wb_payments values (?, ?, 'processor', null, 'patient_portal', "
            "timestamptz '2026-10-30 15:00:00+00', 50.00, 1.75, 48.25, 0, ?, 'opendental', "
            "'1', ?, 'pk', 'ready')",
            rows,
        )


@pytest.fixture
def platform(opendental, tmp_path, monkeypatch):
    organisation = organisation_for(opendental).model_dump(mode="json")
    organisation["writeback"] = {
        "payments": {"patient_portal": {"enabled": True, "timing": "instant"}}
    }
    config = tmp_path / "org.yaml"
    config.write_text(yaml.safe_dump(organisation))
    analyst = tmp_path / "analyst.duckdb"
    known = patients(opendental.world, OD, 1)[0]
    _marts(analyst, [("k1", "ch_ok", OD, str(known)), ("k2", "ch_nobody", OD, "999999")])
    for name, value in {
        "CHAIRSIDE_CONFIG": config,
        "CHAIRSIDE_ANALYST_COPY": analyst,
        "CHAIRSIDE_OUTBOX": tmp_path / "outbox.sqlite",
        "CHAIRSIDE_LANDING": tmp_path / "landing",
    }.items():
        monkeypatch.setenv(name, str(value))
    return Outbox(tmp_path / "outbox.sqlite")


def test_a_refused_write_fails_the_check_and_ops_retry_or_skip_it(platform, opendental):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([build_writeback_asset()], instance=instance, raise_on_error=False)
    assert result.success  # the run succeeds; the check says what failed
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["quickbooks_mapping_valid"].passed  # QuickBooks writeback is off here
    check = checks["no_failed_writes"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    failed = platform.rows(state="failed")
    assert [r.source_ref for r in failed] == ["ch_nobody"]
    assert "Open Dental 400: PatNum not found." in check.description
    assert failed[0].key in check.description
    (materialization,) = result.asset_materializations_for_node("writeback__outbox")
    assert materialization.metadata["sent"].value == 1
    assert materialization.metadata["failed_total"].value == 1
    assert list(written(opendental.url)["markers"].values()) == [1]

    def operate(action: str) -> dg.ExecuteInProcessResult:
        config = {"keys": [failed[0].key], "operator": "ops-dana", "reason": "checked"}
        config["action"] = action
        return writeback_operator.execute_in_process(
            run_config={"ops": {"apply_operator_decision": {"config": config}}},
            instance=instance,
            raise_on_error=False,
        )

    # e.g. after the patient was found: back to pending, looked up before it is sent again
    assert operate("retry").success
    assert platform.get(failed[0].key).state == "pending"
    refused = operate("retry")  # only a failed write can be retried
    assert not refused.success
    (failure,) = [e for e in refused.all_events if e.is_step_failure]
    assert "retry applies to failed writes only" in str(failure.step_failure_data.error.message)
    assert operate("skip").success  # entered by hand instead: never written
    row = platform.get(failed[0].key)
    assert row.state == "skipped"
    assert platform.events(row.key)[-1]["actor"] == "ops-dana"

    again = dg.materialize([build_writeback_asset()], instance=instance)
    checks = {c.check_name: c for c in again.get_asset_check_evaluations()}
    assert checks["no_failed_writes"].passed  # nothing failed any more; nothing was written twice
    assert list(written(opendental.url)["markers"].values()) == [1]


def test_the_sensor_asks_for_one_writeback_per_build_and_the_schedule_runs_daily():
    from chairside.config import Organisation
    from orchestration.writeback_assets import (
        build_writeback_job,
        build_writeback_schedule,
        build_writeback_sensor,
    )

    job = build_writeback_job(build_writeback_asset())
    sensor = build_writeback_sensor(job)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # vendor writes are opt-in
    instance = dg.DagsterInstance.ephemeral()
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert not first.run_requests  # no build yet
    instance.report_runless_asset_event(
        dg.AssetMaterialization(dg.AssetKey(["marts", "wb_payments"]))
    )
    built = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert len(built.run_requests) == 1
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=built.cursor))
    assert not again.run_requests  # the same build is written back once

    organisation = Organisation.model_validate(
        {
            "id": "g",
            "name": "G",
            "connections": [
                {
                    "id": "books",
                    "vendor": "quickbooks",
                    "base_url": "http://127.0.0.1:9",
                    "token_url": "http://127.0.0.1:9/token",
                    "realm_id": "1",
                    "client_id_env": "QB_ID",
                    "client_secret_env": "QB_SECRET",
                    "refresh_token_env": "QB_TOKEN",
                    "timezone": "America/Chicago",
                }
            ],
            "sync": {"schedule_timezone": "America/Chicago"},
            "writeback": {"daily_at": "17:45"},
        }
    )
    schedule = build_writeback_schedule(organisation, job)
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "45 17 * * *",
        "America/Chicago",
    )
