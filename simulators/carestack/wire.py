"""CareStack wire format: how the Open Dental shaped world becomes CareStack records.

CareStack's partner API is not public (vendor-apis.md section 2), so the shapes here follow what
third-party integrations show and are otherwise our assumptions:

- One CareStack *account* (``OfficeSpec.customer_key`` = account id) holds several locations:
  every world office with ``pms="carestack"`` and that account id is one location.
- Ids are account-wide integers. World keys are only unique per office, so a record's id is
  ``slot * ID_STRIDE + <Open Dental key>`` where ``slot`` (1, 2, ...) is the office's position in
  the account, which is also its ``LocationId``. Ids stay stable as the world advances.
- Reference lists (``/locations``, ``/providers``, ``/operatories``, ``/appointment-status``) use
  PascalCase fields; sync feeds use camelCase (as seen in the GHL integration).
- Change stamps (``lastModifiedOn``, ``createdOn``) are UTC instants ("...Z"): one account spans
  time zones. Appointment ``dateTime`` is the location's wall-clock time (no offset), as in the
  booking bodies seen in integrations; each location carries its IANA ``TimeZone``.

The appointment-status names are the practice's configurable list; ``APPOINTMENT_STATUSES`` is the
list a new simulated account starts with and ``status_name`` says which world state maps to which.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from simulators import names
from simulators.world import OfficeSpec, World

API_PREFIX = "/api/v1.0"
ID_STRIDE = 100_000_000
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
STAMP = "_stamp"  # internal column: the UTC change instant a sync feed orders and filters by

# (Id, Name) of the status list a simulated practice starts with. "Running Late" is configured
# but unused, as practices keep statuses nobody sets.
APPOINTMENT_STATUSES: tuple[tuple[int, str], ...] = (
    (1, "Scheduled"),
    (2, "Confirmed"),
    (3, "Left Message"),
    (4, "Checked In"),
    (5, "Checked Out"),
    (6, "Cancelled"),
    (7, "No Show"),
    (8, "Unscheduled"),
    (9, "Running Late"),
)
# World AptStatus values that are appointments on a CareStack book. Planned (treatment-plan
# placeholders) and PtNote/PtNoteCompleted (notes on the schedule) are not served.
BOOKED_APT_STATUSES = ("Scheduled", "Complete", "Broken", "UnschedList")

# Open Dental PatStatus -> CareStack patient status (unconfirmed names).
PATIENT_STATUSES = {
    "Patient": "Active",
    "NonPatient": "NonPatient",
    "Inactive": "Inactive",
    "Archived": "Archived",
    "Deleted": "Deleted",
    "Deceased": "Deceased",
    "Prospective": "Prospect",
}


@dataclass(frozen=True)
class Account:
    """One CareStack account: its id and its locations (world offices) in slot order."""

    id: str
    offices: tuple[OfficeSpec, ...]

    def slots(self) -> Iterable[tuple[int, OfficeSpec]]:
        return enumerate(self.offices, start=1)


def accounts(world: World) -> dict[str, Account]:
    grouped: dict[str, list[OfficeSpec]] = {}
    for office in world.offices_on("carestack"):
        grouped.setdefault(office.customer_key, []).append(office)
    return {key: Account(key, tuple(offices)) for key, offices in grouped.items()}


def account_id_of(expr: pl.Expr, slot: int) -> pl.Expr:
    """An office key (0 = none) -> the account-wide id (null for none)."""
    return pl.when(expr > 0).then(expr + slot * ID_STRIDE).otherwise(None)


def to_utc(expr: pl.Expr, timezone: str) -> pl.Expr:
    """Naive office-local datetimes -> UTC instants (a wall time skipped by DST moves on 1 h)."""

    def localise(e: pl.Expr) -> pl.Expr:
        return e.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")

    return pl.coalesce(localise(expr), localise(expr + pl.duration(hours=1))).dt.convert_time_zone(
        "UTC"
    )


def utc_text(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime(UTC_FORMAT)


def phone_text(expr: pl.Expr) -> pl.Expr:
    """CareStack shows phones as ``(123) 456-7890``; other digit counts are kept as typed."""
    digits = expr.str.replace_all(r"\D", "")
    ten = pl.when(digits.str.len_chars() == 11).then(digits.str.slice(1)).otherwise(digits)
    pretty = pl.concat_str(
        pl.lit("("), ten.str.slice(0, 3), pl.lit(") "), ten.str.slice(3, 3), pl.lit("-"),
        ten.str.slice(6, 4),
    )  # fmt: skip
    return (
        pl.when(digits.str.len_chars() == 0)
        .then(None)
        .when(ten.str.len_chars() == 10)
        .then(pretty)
        .otherwise(expr)
    )


def empty_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr == "").then(None).otherwise(expr)


# --- reference lists ---------------------------------------------------------------------


def location_record(slot: int, office: OfficeSpec) -> dict:
    city, state, zip3 = names.CITIES_BY_TIMEZONE.get(office.timezone, names.DEFAULT_CITIES)[0]
    return {
        "Id": slot,
        "Name": office.name,
        "AddressLine1": f"{100 + 37 * slot} Main St",
        "City": city,
        "State": state,
        "Zip": f"{zip3}{10 + slot:02d}",
        "Phone": f"({names.AREA_CODES[slot % len(names.AREA_CODES)]}) 555-01{slot:02d}",
        "TimeZone": office.timezone,
        "IsActive": True,
    }


def providers(world: World, account: Account) -> list[dict]:
    frames = []
    for slot, office in account.slots():
        frames.append(
            world.table("providers", office.key).select(
                Id=account_id_of(pl.col("ProvNum"), slot),
                FirstName=pl.col("FName"),
                LastName=pl.col("LName"),
                Suffix=empty_to_null(pl.col("Suffix")),
                ShortName=pl.col("Abbr"),
                ProviderType=pl.when(pl.col("IsSecondary"))
                .then(pl.lit("Hygienist"))
                .otherwise(pl.lit("Dentist")),
                NPI=empty_to_null(pl.col("NationalProvID")),
                LocationId=pl.lit(slot, pl.Int64),
                IsActive=~pl.col("IsHidden"),
            )
        )
    return pl.concat(frames).sort("Id").to_dicts()


def operatories(world: World, account: Account) -> list[dict]:
    frames = []
    for slot, office in account.slots():
        frames.append(
            world.table("operatories", office.key).select(
                Id=account_id_of(pl.col("OperatoryNum"), slot),
                Name=pl.col("OpName"),
                ShortName=pl.col("Abbrev"),
                LocationId=pl.lit(slot, pl.Int64),
                IsActive=~pl.col("IsHidden"),
            )
        )
    return pl.concat(frames).sort("Id").to_dicts()


# --- sync feeds (camelCase, each with the internal STAMP column) ---------------------------


def patients(world: World, account: Account) -> pl.DataFrame:
    frames = []
    for slot, office in account.slots():
        frames.append(
            world.table("patients", office.key).select(
                id=account_id_of(pl.col("PatNum"), slot),
                firstName=pl.col("FName"),
                lastName=pl.col("LName"),
                middleName=empty_to_null(pl.col("MiddleI")),
                preferredName=empty_to_null(pl.col("Preferred")),
                dob=pl.col("Birthdate").dt.strftime(DATE_FORMAT),
                gender=pl.col("Gender"),
                maritalStatus=pl.col("Position"),
                email=empty_to_null(pl.col("Email")),
                mobile=phone_text(pl.col("WirelessPhone")),
                homePhone=phone_text(pl.col("HmPhone")),
                workPhone=phone_text(pl.col("WkPhone")),
                addressLine1=empty_to_null(pl.col("Address")),
                addressLine2=empty_to_null(pl.col("Address2")),
                city=empty_to_null(pl.col("City")),
                state=empty_to_null(pl.col("State")),
                zipCode=empty_to_null(pl.col("Zip")),
                defaultLocationId=pl.lit(slot, pl.Int64),
                status=pl.col("PatStatus").replace_strict(PATIENT_STATUSES),
                guarantorId=account_id_of(pl.col("Guarantor"), slot),
                primaryProviderId=account_id_of(pl.col("PriProv"), slot),
                firstVisitDate=pl.col("DateFirstVisit").dt.strftime(DATE_FORMAT),
                lastModifiedOn=utc_text(to_utc(pl.col("DateTStamp"), office.timezone)),
                **{STAMP: to_utc(pl.col("DateTStamp"), office.timezone)},
            )
        )
    return pl.concat(frames)


def status_name() -> pl.Expr:
    """The CareStack status of a world appointment (columns: AptStatus, confirmed_name,
    DateTimeArrived, DateTimeDismissed, broken_reason). Rows must be BOOKED_APT_STATUSES."""
    status = pl.col("AptStatus")
    return (
        pl.when(status == "Complete")
        .then(pl.lit("Checked Out"))
        .when((status == "Broken") & (pl.col("broken_reason") == "missed"))
        .then(pl.lit("No Show"))
        .when(status == "Broken")
        .then(pl.lit("Cancelled"))
        .when(status == "UnschedList")
        .then(pl.lit("Unscheduled"))
        .when(pl.col("DateTimeArrived").is_not_null() & pl.col("DateTimeDismissed").is_null())
        .then(pl.lit("Checked In"))
        .when(pl.col("confirmed_name") == "Appointment Confirmed")
        .then(pl.lit("Confirmed"))
        .when(pl.col("confirmed_name") == "Left Msg")
        .then(pl.lit("Left Message"))
        .otherwise(pl.lit("Scheduled"))
    )


def appointments(world: World, account: Account, status_ids: dict[str, int]) -> pl.DataFrame:
    """Booked appointments; ``status_ids`` is the account's status list (Name -> Id)."""
    frames = []
    for slot, office in account.slots():
        defs = world.table("definitions", office.key).filter(pl.col("Category") == 2)
        truth = world.table("truth_appointments", office.key).select("AptNum", "broken_reason")
        rows = (
            world.table("appointments", office.key)
            .filter(pl.col("AptStatus").is_in(BOOKED_APT_STATUSES))
            .join(
                defs.select(Confirmed="DefNum", confirmed_name="ItemName"),
                on="Confirmed",
                how="left",
            )
            .join(truth, on="AptNum", how="left")
        )
        providers_ = pl.concat_list(
            account_id_of(pl.col("ProvNum"), slot), account_id_of(pl.col("ProvHyg"), slot)
        ).list.drop_nulls()
        frames.append(
            rows.select(
                id=account_id_of(pl.col("AptNum"), slot),
                patientId=account_id_of(pl.col("PatNum"), slot),
                locationId=pl.lit(slot, pl.Int64),
                operatoryId=account_id_of(pl.col("Op"), slot),
                providerIds=providers_,
                dateTime=pl.col("AptDateTime").dt.strftime(LOCAL_FORMAT),
                duration=(pl.col("Pattern").str.len_chars() * 5).cast(pl.Int64),
                statusId=status_name().replace_strict(status_ids, return_dtype=pl.Int64),
                notes=empty_to_null(pl.col("Note")),
                createdOn=utc_text(to_utc(pl.col("SecDateTEntry"), office.timezone)),
                lastModifiedOn=utc_text(to_utc(pl.col("DateTStamp"), office.timezone)),
                **{STAMP: to_utc(pl.col("DateTStamp"), office.timezone)},
            )
        )
    return pl.concat(frames)
