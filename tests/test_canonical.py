"""The canonical layer end to end: world -> simulator -> extraction -> landing -> `dbt build`.

A small world's two Open Dental offices (one with clinics, one without) are extracted over
loopback HTTP into a real landing zone; the real dbt CLI builds Open Dental staging, the seeds
and the canonical layer into a throwaway DuckDB file. The canonical tables must equal what the
world holds, computed here independently (status signatures, the crosswalk CSV, UTC by zoneinfo),
and a status missing from the crosswalk must fail the build, naming the vendor and the value.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from extract.connectors import prepare_landing
from extract.landing import BatchMeta, LandedRecord, Landing
from extract.opendental.connector import sync_entity
from extract.opendental.streams import ENTITIES
from simulators.generate import generate_world
from simulators.world import World, WorldSpec
from tests.conftest import OPENDENTAL_OFFICES, organisation_for, serve_opendental

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"
DOC = REPO / "docs" / "canonical-model.md"
CROSSWALK = PROJECT_DIR / "seeds" / "appointment_status_crosswalk.csv"
# All staging: the canonical unions read every vendor's adapter (the others land empty here).
SELECT = ("path:models/staging", "path:models/intermediate", "path:seeds")
OD_ENTITIES = (
    "locations",
    "providers",
    "patients",
    "appointments",
    "pms_payments",
    "pms_adjustments",
)
PAT_STATUS = {"Patient": "active", "NonPatient": "non_patient"}


# --------------------------------------------------------------------------- running dbt


def run_dbt(root: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(root / "landing"),
        "CHAIRSIDE_WAREHOUSE": str(root / "warehouse" / "chairside.duckdb"),
        "DO_NOT_TRACK": "1",
    }
    command = [
        str(dbt) if dbt.exists() else "dbt", *args,
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(root / "target"), "--log-path", str(root / "logs"),
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def build(root: Path) -> subprocess.CompletedProcess:
    (root / "warehouse").mkdir(exist_ok=True)
    prepare_landing(root / "landing")  # other vendors' sources read as empty
    return run_dbt(root, "build", "--select", *SELECT)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(WorldSpec(seed=23, n_persons=120, offices=OPENDENTAL_OFFICES))


@pytest.fixture(scope="module")
def built(world, tmp_path_factory) -> Path:
    """Extract every Open Dental entity of the world, then one real `dbt build`."""
    root = tmp_path_factory.mktemp("canonical")
    with pytest.MonkeyPatch.context() as monkeypatch, serve_opendental(world, monkeypatch) as od:
        for connection in organisation_for(od).connections:
            for entity in ENTITIES:
                sync_entity(connection, entity, landing_root=root / "landing", mode="full")
    result = build(root)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return root


def query(root: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse" / "chairside.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def manifest(root: Path) -> dict:
    return json.loads((root / "target" / "manifest.json").read_text())


# --------------------------------------------------------------------------- the world's truth


def to_utc(local: datetime | None, timezone: str) -> datetime | None:
    """The canonical rule: office wall-clock -> UTC; times a DST change makes ambiguous or
    skipped are read as standard time (the smaller UTC offset)."""
    if local is None:
        return None
    zone = ZoneInfo(timezone)
    readings = (local.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
    return min(readings, key=lambda reading: reading.utcoffset()).astimezone(UTC)


def crosswalk() -> dict[tuple[str, str], str]:
    with CROSSWALK.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {(r["source_system"], r["vendor_status"]): r["canonical_status"] for r in rows}


def signature(status: str, confirmed: str, arrived, seated, dismissed) -> str:
    """Open Dental's status signature, as docs/canonical-model.md defines it."""
    if status != "Scheduled":
        return status
    for fact, flag in (("Dismissed", dismissed), ("Seated", seated), ("Arrived", arrived)):
        if flag is not None:
            return f"Scheduled+{fact}"
    return f"Scheduled+Confirmation:{confirmed}" if confirmed else "Scheduled"


def key(connection: str, native) -> str:
    return hashlib.md5(f"opendental-{connection}-{native}".encode()).hexdigest()


def with_def_name(world: World, table: str, column: str) -> pl.DataFrame:
    """The world's table with the name of the definition ``column`` points at (API text)."""
    names = world.table("definitions").select(
        "office", pl.col("DefNum").alias(column), pl.col("ItemName").alias("def_name")
    )
    frame = world.table(table).join(names, on=["office", column], how="left")
    return frame.with_columns(pl.col("def_name").fill_null(""))


def text(value) -> str | None:
    return None if value in (None, "", 0) else str(value)


def cents(value) -> int:
    return round(float(value) * 100)


# --------------------------------------------------------------------------- canonical == world


def test_locations_are_clinics_or_the_office(built, world):
    rows = query(
        built,
        "select connection_id, source_location_id, location_name, timezone, is_active, "
        "location_key from intermediate.int_locations",
    )
    expected = set()
    for office in world.offices_on("opendental"):
        clinics = world.table("clinics", office.key).filter(~pl.col("IsHidden"))
        listed = {c: n for c, n in clinics.select("ClinicNum", "Description").iter_rows()}
        used = set()
        for table in ("patients", "appointments", "payments", "adjustments"):
            used |= set(world.table(table, office.key)["ClinicNum"].to_list())
        if not listed:
            used.add(0)
        for clinic in set(listed) | used:
            active = clinic in listed or clinic == 0
            expected.add(
                (office.key, str(clinic), listed.get(clinic), office.timezone, active,
                 key(office.key, clinic))
            )  # fmt: skip
    assert set(rows) == expected
    assert ("od_lakeside", "0", None, "America/Chicago", True, key("od_lakeside", 0)) in expected
    assert {r[2] for r in rows if r[0] == "od_riverside"} >= {"Riverside Family", "Riverside Kids"}


def test_counts_and_money_per_location_equal_the_world(built, world):
    checks = {
        "patients": ("patients", None),
        "appointments": ("appointments", None),
        "pms_payments": ("payments", "PayAmt"),
        "pms_adjustments": ("adjustments", "AdjAmt"),
    }
    for entity, (table, money) in checks.items():
        amount = "sum(amount * 100)::bigint" if money else "0"
        got = {
            (c, loc): (n, total)
            for c, loc, n, total in query(
                built,
                f"select connection_id, source_location_id, count(*), {amount} "
                f"from intermediate.int_{entity} group by all",
            )
        }
        expected = {}
        for row in world.table(table).iter_rows(named=True):
            where = (row["office"], str(row["ClinicNum"]))
            n, total = expected.get(where, (0, 0))
            expected[where] = (n + 1, total + (cents(row[money]) if money else 0))
        assert got == expected, entity
        assert len(got) >= 3, entity  # two Riverside clinics and the Lakeside office


def test_appointments_equal_the_world_row_for_row(built, world):
    statuses = crosswalk()
    expected = set()
    for row in with_def_name(world, "appointments", "Confirmed").iter_rows(named=True):
        office = row["office"]
        vendor = signature(
            row["AptStatus"], row["def_name"], row["DateTimeArrived"], row["DateTimeSeated"],
            row["DateTimeDismissed"],
        )  # fmt: skip
        expected.add((
            key(office, row["AptNum"]), office, str(row["AptNum"]), key(office, row["PatNum"]),
            key(office, row["ClinicNum"]), key(office, row["ProvNum"]), text(row["ProvHyg"]),
            text(row["Op"]), vendor, statuses[("opendental", vendor)], row["IsNewPatient"],
            row["IsHygiene"], text(row["ProcDescript"]),
        ))  # fmt: skip
    got = query(
        built,
        "select appointment_key, connection_id, source_appointment_id, patient_key, "
        "location_key, provider_key, source_hygienist_id, source_operatory_id, vendor_status, "
        "canonical_status, is_new_patient, is_hygiene, description "
        "from intermediate.int_appointments",
    )
    assert len(got) == len(expected)
    assert set(got) == expected
    # The world exercises most of the crosswalk, and never anything unmapped.
    seen = Counter(row[9] for row in got)
    assert {"scheduled", "confirmed", "completed", "cancelled_or_no_show", "planned"} <= set(seen)
    assert "unmapped" not in seen


def test_broken_appointments_are_not_guessed(built, world):
    """The world knows why each appointment broke; Open Dental's row does not, nor do we."""
    reasons = world.table("truth_appointments").drop_nulls("broken_reason")
    assert set(reasons["broken_reason"]) == {"missed", "cancelled"}
    broken = query(
        built,
        "select distinct canonical_status from intermediate.int_appointments "
        "where vendor_status = 'Broken'",
    )
    assert broken == [("cancelled_or_no_show",)]


def test_appointment_times_are_utc(built, world):
    expected = set()
    for row in world.table("appointments").iter_rows(named=True):
        tz = world.office(row["office"]).timezone
        expected.add((
            row["office"], str(row["AptNum"]), 5 * len(row["Pattern"]), tz,
            *(to_utc(row[c], tz) for c in ("AptDateTime", "SecDateTEntry", "DateTimeArrived",
                                           "DateTimeSeated", "DateTimeDismissed", "DateTStamp")),
        ))  # fmt: skip
    got = query(
        built,
        "select connection_id, source_appointment_id, duration_minutes, timezone, start_at, "
        "booked_at, arrived_at, seated_at, dismissed_at, source_updated_at "
        "from intermediate.int_appointments",
    )
    assert set(got) == expected
    [(mismatched,)] = query(
        built,
        "select count(*) from intermediate.int_appointments "
        "where end_at <> start_at + to_minutes(duration_minutes)",
    )
    assert mismatched == 0


def test_patients_equal_the_world(built, world):
    expected = {
        (
            key(r["office"], r["PatNum"]), str(r["PatNum"]), key(r["office"], r["ClinicNum"]),
            key(r["office"], r["Guarantor"]), text(r["PriProv"]), text(r["LName"]),
            text(r["FName"]), r["Birthdate"], r["Gender"].lower(),
            PAT_STATUS.get(r["PatStatus"], r["PatStatus"].lower()), text(r["Email"]),
            text(r["WirelessPhone"]), {"Yes": True, "No": False}.get(r["TxtMsgOk"]),
            r["DateFirstVisit"], to_utc(r["DateTStamp"], world.office(r["office"]).timezone),
        )
        for r in world.table("patients").iter_rows(named=True)
    }  # fmt: skip
    got = query(
        built,
        "select patient_key, source_patient_id, location_key, guarantor_key, "
        "source_primary_provider_id, last_name, first_name, birth_date, gender, patient_status, "
        "email, mobile_phone, sms_consent, first_visit_date, source_updated_at "
        "from intermediate.int_patients",
    )
    # On a mismatch name only the PatNums: the other columns are (synthetic) patient data.
    differing = sorted({row[1] for row in set(got) ^ expected})
    assert not differing, f"patients that differ from the world: {differing[:20]}"
    assert len(got) == world.table("patients").height


def test_payments_adjustments_and_providers_equal_the_world(built, world):
    payments = {
        (r["office"], str(r["PayNum"]), key(r["office"], r["PatNum"]), r["PayDate"],
         cents(r["PayAmt"]), text(r["def_name"]), r["PayType"] == 0, text(r["DepositNum"]))
        for r in with_def_name(world, "payments", "PayType").iter_rows(named=True)
    }  # fmt: skip
    assert set(query(
        built,
        "select connection_id, source_pms_payment_id, patient_key, payment_date, "
        "(amount * 100)::bigint, payment_type, is_income_transfer, source_deposit_id "
        "from intermediate.int_pms_payments",
    )) == payments  # fmt: skip

    adjustments = {
        (r["office"], str(r["AdjNum"]), r["AdjDate"], cents(r["AdjAmt"]), text(r["def_name"]),
         text(r["ProvNum"]))
        for r in with_def_name(world, "adjustments", "AdjType").iter_rows(named=True)
    }  # fmt: skip
    assert set(query(
        built,
        "select connection_id, source_pms_adjustment_id, adjustment_date, (amount * 100)::bigint, "
        "adjustment_type, source_provider_id from intermediate.int_pms_adjustments",
    )) == adjustments  # fmt: skip

    providers = {
        (r["office"], str(r["ProvNum"]), r["Abbr"], r["IsSecondary"],
         not r["IsHidden"] and r["ProvStatus"] == "Active", text(r["NationalProvID"]))
        for r in world.table("providers").iter_rows(named=True)
    }  # fmt: skip
    assert set(query(
        built,
        "select connection_id, source_provider_id, provider_abbr, is_hygienist, is_active, npi "
        "from intermediate.int_providers",
    )) == providers  # fmt: skip


def test_every_data_and_unit_test_ran_and_passed(built):
    results = json.loads((built / "target" / "run_results.json").read_text())["results"]
    assert all(r["status"] in ("success", "pass") for r in results), [
        (r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")
    ]
    ran = {part for r in results for part in r["unique_id"].split(".")}
    assert {
        "appointment_status_missing_from_crosswalk",
        "accepted_values_int_appointments_canonical_status",
        "opendental_status_signature_from_apt_status_and_patient_flow",
        "opendental_local_times_to_utc_across_dst",
        "opendental_locations_one_per_clinic_or_office",
        "appointments_status_from_crosswalk_never_guessed",
    } <= ran


# --------------------------------------------------------------------------- one column list


def documented_columns() -> dict[str, list[tuple[str, str]]]:
    """Entity -> [(column, type)] from the tables in docs/canonical-model.md."""
    entities, current = {}, None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^### (\w+) \(`int_\1`\)$", line)
        if heading:
            current = entities.setdefault(heading.group(1), [])
        row = re.match(r"^\| `(\w+)` \| ([\w(),]+) \|", line)
        if row and current is not None:
            current.append((row.group(1), row.group(2)))
    return entities


def documented_statuses() -> set[str]:
    section = DOC.read_text().split("## Appointment statuses")[1].split("\n## ")[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))


def test_warehouse_yml_and_document_share_one_column_list(built):
    documented = documented_columns()
    assert len(documented) == 13
    nodes = manifest(built)["nodes"]
    for entity, columns in documented.items():
        warehouse = query(
            built,
            "select column_name, lower(data_type) from information_schema.columns where "
            "table_schema = 'intermediate' and table_name = ? order by ordinal_position",
            [f"int_{entity}"],
        )
        types = [(c, {"timestamptz": "timestamp with time zone"}.get(t, t)) for c, t in columns]
        assert warehouse == types, entity
        node = nodes[f"model.chairside.int_{entity}"]
        assert node["description"], entity
        described = {c: v["description"] for c, v in node["columns"].items()}
        assert list(described) == [c for c, _ in columns], entity
        assert all(described.values()), entity


def test_adapters_are_registered_and_have_the_canonical_columns(built):
    documented = documented_columns()
    nodes = manifest(built)["nodes"]
    adapters = [
        n for n in nodes.values()
        if n["resource_type"] == "model" and re.fullmatch(r"int_\w+__\w+", n["name"])
    ]  # fmt: skip
    assert {n["name"] for n in adapters} >= {f"int_{e}__opendental" for e in OD_ENTITIES}
    for node in adapters:
        entity = node["name"][4:].split("__")[0]
        union = nodes[f"model.chairside.int_{entity}"]
        assert node["unique_id"] in union["depends_on"]["nodes"], (
            f"{node['name']} is not listed in canonical_adapters()"
        )
        expected = {
            c for c, _ in documented[entity]
            if not c.endswith("_key") and c not in ("source_system", "canonical_status")
        }  # fmt: skip
        columns = {
            c for (c,) in query(
                built,
                "select column_name from information_schema.columns "
                "where table_schema = 'intermediate' and table_name = ?",
                [node["name"]],
            )
        }  # fmt: skip
        assert columns == expected, node["name"]
        assert set(node["columns"]) == expected and all(
            v["description"] for v in node["columns"].values()
        ), node["name"]


def test_statuses_are_one_documented_set(built):
    statuses = documented_statuses()
    tests = {
        n["name"]: n for n in manifest(built)["nodes"].values() if n["resource_type"] == "test"
    }
    accepted = tests["accepted_values_int_appointments_canonical_status"]["test_metadata"]
    assert set(accepted["kwargs"]["values"]) == statuses
    seed = tests["accepted_values_appointment_status_crosswalk_canonical_status"]["test_metadata"]
    assert set(seed["kwargs"]["values"]) == statuses - {"unmapped"}
    mapped = crosswalk()
    assert set(mapped.values()) <= statuses - {"unmapped"}
    assert {system for system, _ in mapped} == {"opendental", "carestack", "nexhealth"}


# --------------------------------------------------------------------------- unknown values


def test_unknown_status_fails_the_build_naming_vendor_and_value(built, tmp_path):
    """An office's new confirmation status and an unmapped AptStatus: kept, flagged, named."""
    shutil.copytree(built / "landing", tmp_path / "landing")
    [(record,)] = query(
        built,
        "select _record from read_parquet(?) limit 1",
        [
            str(
                built
                / "landing"
                / "opendental"
                / "appointments"
                / "od_lakeside"
                / "**"
                / "*.parquet"
            )
        ],
    )
    unknown = [("Scheduled", "Waitlist"), ("None", "Unconfirmed")]
    records = [
        json.loads(record)
        | {"AptNum": 900_000 + i, "AptStatus": status, "confirmed": name,
           "DateTimeArrived": "0001-01-01 00:00:00", "DateTimeSeated": "0001-01-01 00:00:00",
           "DateTimeDismissed": "0001-01-01 00:00:00"}
        for i, (status, name) in enumerate(unknown)
    ]  # fmt: skip
    meta = BatchMeta(
        connection_id="od_lakeside", vendor="opendental", entity="appointments",
        load_id="20991231T000000000000Z-zzzz0001", batch_seq=0, cursor_field=None,
        cursor_value=None, source_timezone="America/Chicago", extracted_at=datetime.now(UTC),
    )  # fmt: skip
    landed = [LandedRecord(key=str(r["AptNum"]), record=r, server_time=None) for r in records]
    Landing(tmp_path / "landing").write_batch(meta, landed, [])

    result = build(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert re.search(r"FAIL 2 appointment_status_missing_from_crosswalk", output), output[-4000:]
    for value in ("Scheduled+Confirmation:Waitlist", "None"):
        assert re.search(rf"opendental vendor_status '{re.escape(value)}' \(1 row", output)
    # Kept, never dropped or guessed.
    assert query(
        tmp_path,
        "select source_appointment_id, vendor_status, canonical_status "
        "from intermediate.int_appointments where canonical_status = 'unmapped' order by 1",
    ) == [("900000", "Scheduled+Confirmation:Waitlist", "unmapped"), ("900001", "None", "unmapped")]
