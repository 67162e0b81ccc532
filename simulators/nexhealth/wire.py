"""NexHealth wire format: how one office's world rows become NexHealth records.

Each ``*_frame`` function takes the office's rows of the world tables it needs and returns one
row per NexHealth record: the record's fields as columns in API order (nested objects as
structs), plus helper columns starting with "_" that the app filters and pages on (``_u``:
updated_at in epoch microseconds; ``_start``: an appointment's start_time). ``records`` turns a
slice into JSON-ready dicts.

The rules (vendor-apis.md section 3 and the v20240412 OAS):
- every timestamp is UTC ISO-8601 with milliseconds and "Z"; the world's office-local wall
  times are converted with the office's time zone (a time in the spring-forward gap is read as
  the instant the clock jumped over, a time in the repeated autumn hour as its first pass);
- money is ``{"amount": "12.50", "currency": "USD"}``, payments negative (they lower the
  patient's balance; a refund would be positive);
- ids are NexHealth ids (``data.nex_id``), the PMS key is kept as the string ``foreign_id``;
- appointments carry no status, only booleans derived from the Open Dental-shaped row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from simulators.nexhealth.data import (
    HYGIENE_TYPE,
    ID_SPACE,
    NEW_PATIENT_TYPE,
    TREATMENT_TYPE,
    Location,
)

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
# Open Dental statuses NexHealth has no appointment for: not on the schedule.
OFF_SCHEDULE = ("Planned", "UnschedList")
BLOCKS = ("PtNote", "PtNoteCompleted")  # schedule notes: unavailable=true
INACTIVE_STATUSES = ("Inactive", "Archived", "Deleted", "Deceased")
GENDERS = {"Male": "Male", "Female": "Female", "Other": "Other"}  # "Unknown" -> null
LANGUAGES = {"eng": "en", "spa": "es", "fre": "fr", "por": "pt", "chi": "zh", "vie": "vi"}
CONFIRMED_DEF = "Appointment Confirmed"


@dataclass(frozen=True)
class WireOptions:
    # Two NexHealth guides disagree on a self-guaranteed patient's guarantor_id: its own id, or
    # 0 ("If the value is '0', the patient is their own guarantor").
    own_guarantor_zero: bool = False


def to_utc(column: str | pl.Expr, timezone: str) -> pl.Expr:
    local = pl.col(column) if isinstance(column, str) else column

    def zoned(expr: pl.Expr) -> pl.Expr:
        return expr.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")

    # A wall time that never existed (spring forward) is read an hour later, on the new offset:
    # the same instant the old offset gives it.
    return pl.coalesce(zoned(local), zoned(local + pl.duration(hours=1))).dt.convert_time_zone(
        "UTC"
    )


def iso(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime(ISO_FORMAT)


def epoch_us(expr: pl.Expr) -> pl.Expr:
    return expr.dt.epoch("us")


def text_or_null(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column))


def digits(column: str) -> pl.Expr:
    return pl.col(column).fill_null("").str.replace_all(r"\D", "")


def nex(column: str, location: Location) -> pl.Expr:
    """The NexHealth id of a PMS key column; 0 (Open Dental's "none") becomes null."""
    return pl.when(pl.col(column) > 0).then(pl.col(column) + location.id * ID_SPACE)


def common(location: Location) -> dict[str, pl.Expr]:
    return {
        "institution_id": pl.lit(location.institution_id),
        "foreign_id_type": pl.lit(location.foreign_id_type),
    }


def records(frame: pl.DataFrame) -> list[dict]:
    return frame.select([c for c in frame.columns if not c.startswith("_")]).to_dicts()


def _onboarded(location: Location) -> pl.Expr:
    return pl.lit(location.onboarded_at).dt.cast_time_unit("us").dt.convert_time_zone("UTC")


def _name(first: str, last: str) -> pl.Expr:
    return pl.concat_str([pl.col(first), pl.col(last)], separator=" ").str.strip_chars()


# --- patients ------------------------------------------------------------------------------


def patients_frame(
    patients: pl.DataFrame, location: Location, options: WireOptions
) -> pl.DataFrame:
    tz = location.timezone
    updated = to_utc("DateTStamp", tz)
    guarantor = nex("Guarantor", location)
    if options.own_guarantor_zero:
        guarantor = pl.when(pl.col("Guarantor") == pl.col("PatNum")).then(0).otherwise(guarantor)
    cell, home = digits("WirelessPhone"), digits("HmPhone")
    return patients.select(
        id=nex("PatNum", location),
        email=text_or_null("Email"),
        first_name=pl.col("FName"),
        middle_name=text_or_null("MiddleI"),
        last_name=pl.col("LName"),
        name=_name("FName", "LName"),
        created_at=iso(to_utc(pl.col("SecDateEntry").cast(pl.Datetime("us")), tz)),
        updated_at=iso(updated),
        **common(location),
        foreign_id=pl.col("PatNum").cast(pl.String),
        bio=pl.struct(
            city=pl.col("City"),
            state=pl.col("State"),
            gender=pl.col("Gender").replace_strict(GENDERS, default=None),
            zip_code=pl.col("Zip"),
            new_patient=pl.lit(False),
            non_patient=pl.col("PatStatus") == "NonPatient",
            phone_number=pl.when(cell != "").then(cell).otherwise(home),
            date_of_birth=pl.col("Birthdate").dt.strftime("%Y-%m-%d"),
            address_line_1=pl.col("Address"),
            address_line_2=pl.col("Address2"),
            street_address=pl.col("Address"),
            cell_phone_number=cell,
            home_phone_number=home,
            work_phone_number=digits("WkPhone"),
        ),
        inactive=pl.col("PatStatus").is_in(INACTIVE_STATUSES),
        last_sync_time=iso(updated),
        guarantor_id=guarantor,
        billing_type=pl.col("BillingType"),
        chart_id=text_or_null("ChartNumber"),
        preferred_language=pl.col("Language").replace_strict(LANGUAGES, default=None),
        provider_id=nex("PriProv", location),
        location_ids=pl.concat_list(pl.lit(location.id, pl.Int64)),
        _u=epoch_us(updated),
    )


# --- appointments --------------------------------------------------------------------------


def _confirmed_defnum(definitions: pl.DataFrame) -> int:
    found = definitions.filter((pl.col("Category") == 2) & (pl.col("ItemName") == CONFIRMED_DEF))
    return int(found["DefNum"][0]) if len(found) else -1


def _timezone_offset(start_utc: pl.Expr, timezone: str) -> pl.Expr:
    """The office's UTC offset at the start, as NexHealth prints it: "-4:00"."""
    local = start_utc.dt.convert_time_zone(timezone)
    minutes = (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_minutes()
    sign = pl.when(minutes < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
    return pl.format(
        "{}{}:{}",
        sign,
        minutes.abs() // 60,
        (minutes.abs() % 60).cast(pl.String).str.zfill(2),
    )


def appointments_frame(
    appointments: pl.DataFrame,
    truth: pl.DataFrame,
    providers: pl.DataFrame,
    definitions: pl.DataFrame,
    location: Location,
) -> pl.DataFrame:
    """Only appointments on the schedule; status becomes NexHealth's booleans:

    - confirmed: the Confirmed definition is "Appointment Confirmed"; confirmed_at is when the
      eConfirmation batch ran (09:00 two days ahead), never before booking or after the row's
      last change (the world keeps no confirmation time of its own);
    - cancelled / patient_missed: Broken, split by truth_appointments.broken_reason;
      cancelled_at is the break's change stamp;
    - checkin_at: DateTimeArrived; checked_out: Complete, checked_out_at DateTimeDismissed;
    - unavailable: schedule notes (PtNote, PtNoteCompleted), which have no appointment type.
    """
    tz = location.timezone
    rows = (
        appointments.filter(~pl.col("AptStatus").is_in(OFF_SCHEDULE))
        .join(truth.select("AptNum", "broken_reason"), on="AptNum", how="left")
        .with_columns(
            _prov=pl.when(pl.col("IsHygiene") & (pl.col("ProvHyg") > 0))
            .then(pl.col("ProvHyg"))
            .otherwise(pl.col("ProvNum"))
        )
        .join(
            providers.select(_prov=pl.col("ProvNum"), provider_name=_name("FName", "LName")),
            on="_prov",
            how="left",
        )
    )
    status, reason = pl.col("AptStatus"), pl.col("broken_reason")
    start = to_utc("AptDateTime", tz)
    updated = to_utc("DateTStamp", tz)
    broken = status == "Broken"
    cancelled = broken & (reason.is_null() | (reason != "missed"))
    confirmed = pl.col("Confirmed") == _confirmed_defnum(definitions)
    batch = pl.col("AptDateTime").dt.truncate("1d") - pl.duration(days=2) + pl.duration(hours=9)
    confirmed_local = pl.min_horizontal(
        pl.max_horizontal(pl.col("SecDateTEntry"), batch), pl.col("DateTStamp")
    )
    unavailable = status.is_in(BLOCKS)
    checked_out = status == "Complete"
    type_number = (
        pl.when(unavailable)
        .then(None)
        .when(pl.col("IsNewPatient"))
        .then(NEW_PATIENT_TYPE)
        .when(pl.col("IsHygiene"))
        .then(HYGIENE_TYPE)
        .otherwise(TREATMENT_TYPE)
    )
    return rows.select(
        id=nex("AptNum", location),
        patient_id=nex("PatNum", location),
        provider_id=nex("_prov", location),
        provider_name=pl.col("provider_name"),
        start_time=iso(start),
        end_time=iso(start + pl.duration(minutes=pl.col("Pattern").str.len_chars() * 5)),
        timezone=pl.lit(tz),
        timezone_offset=_timezone_offset(start, tz),
        confirmed=confirmed,
        confirmed_at=iso(pl.when(confirmed).then(to_utc(confirmed_local, tz))),
        patient_confirmed=pl.lit(False),
        patient_confirmed_at=pl.lit(None, pl.String),
        cancelled=cancelled,
        cancelled_at=iso(pl.when(cancelled).then(updated)),
        patient_missed=broken & (reason == "missed"),
        checkin_at=iso(to_utc("DateTimeArrived", tz)),
        checked_out=checked_out,
        checked_out_at=iso(pl.when(checked_out).then(to_utc("DateTimeDismissed", tz))),
        unavailable=unavailable,
        sooner_if_possible=pl.col("Priority") == "ASAP",
        note=text_or_null("Note"),
        is_new_clients_patient=pl.col("IsNewPatient"),
        # "Nexhealth appointment_type id, 0 if not set" (OAS).
        appointment_type_id=pl.when(type_number.is_null())
        .then(0)
        .otherwise(type_number + location.id * ID_SPACE),
        operatory_id=nex("Op", location),
        location_id=pl.lit(location.id),
        **common(location),
        foreign_id=pl.col("AptNum").cast(pl.String),
        referrer=pl.lit(None, pl.String),
        created_by_user_id=pl.lit(None, pl.Int64),
        is_guardian=pl.lit(False),
        misc=pl.struct(is_booked_on_nexhealth=pl.lit(False)),
        created_at=iso(to_utc("SecDateTEntry", tz)),
        updated_at=iso(updated),
        last_sync_time=iso(updated),
        _u=epoch_us(updated),
        _start=epoch_us(start),
    )


# --- providers and operatories -----------------------------------------------------------


def providers_frame(
    providers: pl.DataFrame, definitions: pl.DataFrame, location: Location
) -> pl.DataFrame:
    updated = to_utc("DateTStamp", location.timezone)
    specialties = definitions.filter(pl.col("Category") == 35).select(
        Specialty=pl.col("DefNum"), specialty_code=pl.col("ItemName")
    )
    rows = providers.join(specialties, on="Specialty", how="left")
    return rows.select(
        id=nex("ProvNum", location),
        email=pl.lit(None, pl.String),
        first_name=pl.col("FName"),
        middle_name=pl.lit(None, pl.String),
        last_name=pl.col("LName"),
        name=_name("FName", "LName"),
        display_name=pl.format("{} {}, {}", "FName", "LName", "Suffix"),
        created_at=iso(pl.min_horizontal(updated, _onboarded(location))),
        updated_at=iso(updated),
        **common(location),
        foreign_id=pl.col("ProvNum").cast(pl.String),
        inactive=pl.col("IsHidden") | (pl.col("ProvStatus") != "Active"),
        npi=text_or_null("NationalProvID"),
        tin=pl.lit(None, pl.String),
        specialty_code=pl.col("specialty_code"),
        locations=pl.concat_list(pl.struct(id=pl.lit(location.id), name=pl.lit(location.name))),
        last_sync_time=iso(updated),
        _u=epoch_us(updated),
    )


def operatories_frame(operatories: pl.DataFrame, location: Location) -> pl.DataFrame:
    # Open Dental keeps no change stamp on operatories: NexHealth's copy dates from onboarding.
    onboarded = _onboarded(location)
    return operatories.select(
        id=nex("OperatoryNum", location),
        name=pl.col("OpName"),
        display_name=pl.col("Abbrev"),
        location_id=pl.lit(location.id),
        foreign_id=pl.col("OperatoryNum").cast(pl.String),
        foreign_id_type=pl.lit(location.foreign_id_type),
        active=~pl.col("IsHidden"),
        bookable_online=~pl.col("IsHidden"),
        created_at=iso(onboarded),
        updated_at=iso(onboarded),
        last_sync_time=iso(onboarded),
        _u=epoch_us(onboarded),
    )


# --- payments ------------------------------------------------------------------------------


def _amount(cents: pl.Expr) -> pl.Expr:
    """Exact decimal text of a cent amount: -1250 -> "-12.50"."""
    sign = pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.format(
        "{}{}.{}",
        sign,
        cents.abs() // 100,
        (cents.abs() % 100).cast(pl.String).str.zfill(2),
    )


def payments_frame(
    payments: pl.DataFrame,
    patients: pl.DataFrame,
    location: Location,
    options: WireOptions,
    transactions: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``transactions`` (office, PayNum, transaction_id): what API writers sent as their
    tracking id (simulators.nexhealth.writes); other payments have none."""
    updated = to_utc("SecDateTEdit", location.timezone)
    rows = payments.join(patients.select("PatNum", "Guarantor"), on="PatNum", how="left")
    if transactions is not None:
        rows = rows.join(transactions.select("PayNum", "transaction_id"), on="PayNum", how="left")
    else:
        rows = rows.with_columns(transaction_id=pl.lit(None, pl.String))
    guarantor = nex("Guarantor", location)
    if options.own_guarantor_zero:
        guarantor = pl.when(pl.col("Guarantor") == pl.col("PatNum")).then(0).otherwise(guarantor)
    cents = (pl.col("PayAmt") * 100).round(0).cast(pl.Int64)
    return rows.select(
        id=nex("PayNum", location),
        foreign_id=pl.col("PayNum").cast(pl.String),
        location_id=pl.lit(location.id),
        patient_id=nex("PatNum", location),
        guarantor_id=guarantor,
        provider_id=pl.lit(None, pl.Int64),
        updated_at=iso(updated),
        description=text_or_null("PayNote"),
        deleted_at=pl.lit(None, pl.String),
        # A payment lowers the balance, so NexHealth shows it negative (a refund positive).
        payment_amount=pl.struct(amount=_amount(-cents), currency=pl.lit("USD")),
        paid_at=pl.col("PayDate").dt.strftime("%Y-%m-%d"),
        transaction_id=pl.col("transaction_id"),
        charge_id=pl.lit(None, pl.Int64),
        claim_id=pl.lit(None, pl.Int64),
        payment_plan_id=pl.lit(None, pl.Int64),
        insurance_plan_id=pl.lit(None, pl.Int64),
        payment_type_id=nex("PayType", location),
        _u=epoch_us(updated),
    )


def payment_type_records(definitions: pl.DataFrame, location: Location) -> list[dict]:
    """GET /payment_types: the PMS's payment types (Open Dental PaymentTypes, category 10)."""
    rows = definitions.filter(pl.col("Category") == 10).sort("ItemOrder", "DefNum")
    return records(
        rows.select(
            id=nex("DefNum", location),
            name=pl.col("ItemName"),
            active=~pl.col("IsHidden"),
            location_id=pl.lit(location.id),
            foreign_id=pl.col("DefNum").cast(pl.String),
        )
    )


# --- locations -----------------------------------------------------------------------------


def location_record(location: Location, address: dict[str, str], now_utc: datetime) -> dict:
    onboarded = location.onboarded_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "id": location.id,
        "name": location.name,
        "institution_id": location.institution_id,
        "street_address": address["street_address"],
        "street_address_2": None,
        "city": address["city"],
        "state": address["state"],
        "zip_code": address["zip_code"],
        "country_code": "US",
        "created_at": onboarded,
        "updated_at": onboarded,
        "latitude": None,
        "longitude": None,
        "phone_number": address["phone_number"],
        "foreign_id": str(location.id),
        # The PMS this location's sync reads ("msg-dentrix-DataSource-1005").
        "foreign_id_type": location.foreign_id_type,
        "email": None,
        "tz": location.timezone,
        "last_sync_time": now_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "insert_appt_client": True,
        "map_by_operatory": True,
        "set_availability_by_operatory": False,
        "inactive": False,
    }
