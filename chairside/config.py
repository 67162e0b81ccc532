"""The organisation config: one YAML file that describes a dental group.

It names connections, locations and sync settings, and only the *names* of the environment
variables that hold secrets, never the secrets themselves. Strings may use ``${VAR}`` or
``${VAR:-default}`` so one file serves a laptop, CI and production.

Validation errors name the field path and say what to change, e.g.
``connections[1].customer_key_env: must name an environment variable (UPPER_SNAKE_CASE)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Identifier = Annotated[str, Field(pattern=_ID.pattern, description="lower_snake_case id")]


class ConfigError(ValueError):
    """A config file that cannot be used, with one line per problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as 'America/New_York'"
        ) from None
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        # Never echo the value: someone may have pasted the secret itself here.
        raise ValueError(
            "must be the NAME of an environment variable (UPPER_SNAKE_CASE) that holds the "
            "secret, not the secret itself"
        )
    return value


TimeZone = Annotated[str, AfterValidator(_check_timezone)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]


class _Connection(_Strict):
    """What every connection has; each vendor adds its own credentials and limits."""

    id: Identifier
    base_url: str
    # The IANA time zone the source's local times are in (an office's, an account's).
    timezone: TimeZone
    requests_per_second: float = Field(gt=0)
    # Re-read this far behind the last cursor so late commits and cursor ties are never lost.
    overlap_minutes: int = Field(default=10, ge=0)
    # Rows buffered before a batch is written and checkpointed.
    batch_rows: int = Field(default=5000, ge=1)
    connect_timeout_s: float = Field(default=10, gt=0)
    read_timeout_s: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=6, ge=1)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")


class OpenDentalConnection(_Connection):
    """One Open Dental database (an office), reached through the Open Dental REST API."""

    vendor: Literal["opendental"]
    developer_key_env: EnvName
    customer_key_env: EnvName
    # 1 request/second is Open Dental's documented limit for developers with any write permission
    # (ReadAll-only keys: 1 per 5 s). The local API Service is not throttled.
    requests_per_second: float = Field(default=1.0, gt=0)
    # 100 is the remote API's hard maximum per page (the local API allows 1000).
    page_size: int = Field(default=100, ge=1, le=1000)
    # Payments can only be filtered by entry date, so the overlap for them is in days.
    payments_overlap_days: int = Field(default=2, ge=0)
    read_timeout_s: float = Field(default=70, gt=0)  # the API's own limit is 60 s (504)


class CareStackConnection(_Connection):
    """One CareStack account (one or more locations). CareStack's partner API is not public:
    every detail marked unconfirmed in vendor-apis.md section 2 is a setting here."""

    vendor: Literal["carestack"]
    account_id_env: EnvName
    account_key_env: EnvName
    vendor_key_env: EnvName
    # Unconfirmed which of the two seen auth schemes applies: key headers on every call, or an
    # OAuth2 password grant at identity_url (client credentials in the *_env fields below).
    auth_mode: Literal["headers", "oauth_password"] = "headers"
    identity_url: str | None = None
    client_id_env: EnvName | None = None
    client_secret_env: EnvName | None = None
    # No published rate limit: stay polite by default.
    requests_per_second: float = Field(default=5.0, gt=0)
    # Unconfirmed endpoints (paths under base_url) of online appointment requests and
    # CS Conversation calls; both are assumed to page like the sync feeds.
    appointment_requests_path: str = "/sync/appointment-requests"
    conversation_calls_path: str = "/sync/conversation-calls"


class NexHealthConnection(_Connection):
    """One NexHealth institution (subdomain), the route to Dentrix, Eaglesoft, Denticon, ..."""

    vendor: Literal["nexhealth"]
    api_key_env: EnvName
    subdomain: str
    # NexHealth location ids this connection syncs; empty = every location of the institution.
    location_ids: list[int] = Field(default_factory=list)
    api_version: str = "v20240412"
    # GET /appointments is limited to 10 requests/s per key (others 100/s); the patients and
    # appointments endpoints also share 1,000 requests/minute.
    requests_per_second: float = Field(default=10.0, gt=0)
    page_size: int = Field(default=1000, ge=1, le=1000)
    # GET /appointments requires a start/end window (ISO-8601) on start_time. Whether NexHealth
    # caps its length is unconfirmed, so it is a setting; the default asks for every appointment.
    appointments_start: str = "2000-01-01T00:00:00Z"
    appointments_end: str = "2100-01-01T00:00:00Z"


class TwilioConnection(_Connection):
    """A Twilio-shaped phone system: call logs and text messages of the group's numbers."""

    vendor: Literal["twilio"]
    account_sid_env: EnvName
    auth_token_env: EnvName
    # Which location each of the group's numbers (E.164) rings at.
    numbers: dict[str, Identifier] = Field(default_factory=dict)
    requests_per_second: float = Field(default=20.0, gt=0)
    page_size: int = Field(default=1000, ge=1, le=1000)
    # Re-read calls that started this long before the cursor: a call in progress at the last
    # sync changes until it ends, so this must exceed the longest call the group has.
    overlap_minutes: int = Field(default=120, ge=0)
    # Twilio documents StartTime/DateSent filters as UTC dates; whether a full time is honoured
    # is unconfirmed. "date" sends the date of (cursor - overlap): safe, reads up to a day more.
    filter_granularity: Literal["date", "datetime"] = "date"


class StripeConnection(_Connection):
    """A Stripe-shaped card processor account: charges, refunds, disputes, balance, payouts."""

    vendor: Literal["stripe"]
    api_key_env: EnvName
    # Stripe's read limit is 100 requests/s in live mode and 25/s in test mode.
    requests_per_second: float = Field(default=25.0, gt=0)
    page_size: int = Field(default=100, ge=1, le=100)
    # Lists filter only by creation time, so the overlap must span the days objects still
    # change in: payouts settle and balance transactions become available within ~4 days
    # (over a weekend). Later changes wait for the daily full sync.
    overlap_minutes: int = Field(default=7200, ge=0)


class QuickBooksConnection(_Connection):
    """One QuickBooks Online company (realm), read through /query and /cdc."""

    vendor: Literal["quickbooks"]
    realm_id: str
    token_url: str
    client_id_env: EnvName
    client_secret_env: EnvName
    # Only the first refresh token comes from the environment: QuickBooks rotates it on every
    # refresh, and the newest one is persisted in the token store and used from then on.
    refresh_token_env: EnvName
    minor_version: int = 75
    # 500 requests/minute per realm.
    requests_per_second: float = Field(default=8.0, gt=0)
    page_size: int = Field(default=1000, ge=1, le=1000)


Connection = Annotated[
    OpenDentalConnection
    | CareStackConnection
    | NexHealthConnection
    | TwilioConnection
    | StripeConnection
    | QuickBooksConnection,
    Field(discriminator="vendor"),
]
VENDORS = {"opendental", "carestack", "nexhealth", "twilio", "stripe", "quickbooks"}


class Location(_Strict):
    """A practice location of the group, served by one connection."""

    id: Identifier
    name: str
    connection: Identifier
    # For Open Dental offices that use clinics: the ClinicNum of this location (0 = no clinics).
    clinic_num: int = Field(default=0, ge=0)
    # The location's id in its PMS (CareStack LocationId, NexHealth location_id). When it is not
    # set, a sync proposes the closest PMS location by name for a person to confirm.
    pms_location_id: str | None = None
    # How the card processor's charges name this location (metadata.location), when not by
    # this id: whatever the practice's payment links or terminals were set up with.
    processor_location_ref: str | None = None


class SyncSettings(_Strict):
    incremental_cron: str = "0 * * * *"
    full_cron: str = "0 3 * * *"
    schedule_timezone: TimeZone = "UTC"


CANONICAL_STATUSES = (
    "scheduled", "confirmed", "arrived", "in_chair", "completed", "cancelled", "no_show",
    "cancelled_or_no_show", "unscheduled", "planned", "not_an_appointment",
)  # fmt: skip


class IdentitySettings(_Strict):
    """Thresholds of patient matching (docs/identity.md). An enquiry is linked automatically
    when its best candidate person scores at least ``auto_link_probability`` and beats the next
    person by ``auto_link_margin_weight`` match-weight units; it goes to review from
    ``review_probability``; below that it is a new-patient candidate."""

    auto_link_probability: float = Field(default=0.99, gt=0, lt=1)
    auto_link_margin_weight: float = Field(default=3.0, ge=0)
    review_probability: float = Field(default=0.5, gt=0, lt=1)
    # Region used to read phone numbers written without a country code.
    phone_region: str = Field(default="US", min_length=2, max_length=2)

    @model_validator(mode="after")
    def _ordered(self) -> IdentitySettings:
        if self.review_probability >= self.auto_link_probability:
            raise ValueError(
                f"review_probability ({self.review_probability}) must be below "
                f"auto_link_probability ({self.auto_link_probability})"
            )
        return self


class FunnelStages(_Strict):
    """Which canonical appointment statuses (the crosswalk's canonical_status values) reach
    each funnel stage, as peer CRMs link a stage to a PMS status."""

    booked: list[str] = ["scheduled", "confirmed", "arrived", "in_chair", "completed"]
    arrived: list[str] = ["arrived", "in_chair", "completed"]
    checked_out: list[str] = ["completed"]
    lost_cancelled: list[str] = ["cancelled", "cancelled_or_no_show", "unscheduled"]
    lost_no_show: list[str] = ["no_show"]

    @model_validator(mode="after")
    def _known(self) -> FunnelStages:
        problems = [
            f"{stage}: {status!r} is not a canonical status (known: {list(CANONICAL_STATUSES)})"
            for stage, statuses in self.model_dump().items()
            for status in statuses
            if status not in CANONICAL_STATUSES
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class FunnelSettings(_Strict):
    """The lead funnel (docs/lead-funnel.md)."""

    # A cohort's conversion is reported once this many days have passed since its last day.
    conversion_window_days: int = Field(default=30, ge=1)
    # A journey with no booking this many days after its enquiry is lost as unresponsive.
    unresponsive_after_days: int = Field(default=14, ge=1)
    cohort_period: Literal["week", "month"] = "month"
    stages: FunnelStages = FunnelStages()


class CallSettings(_Strict):
    """Call metrics (docs/calls.md; metrics-and-matching.md section 1)."""

    # A caller who hangs up within this many seconds of ringing is a short abandon.
    short_abandon_seconds: int = Field(default=6, ge=0)
    # Service level: answered within this many seconds of reaching the ring group.
    service_level_seconds: int = Field(default=30, ge=1)
    # exclude_short: abandon rate = long abandons / (offered - short abandons) (our default);
    # include_short: abandoned / offered, short abandons counted.
    abandon_rate_formula: Literal["exclude_short", "include_short"] = "exclude_short"


class PaymentTypeSettings(_Strict):
    """How one processor payment type (a charge's metadata.payment_type) is handled."""

    # Which amount the PMS ledger records for a charge: the gross paid, or net of fees.
    pms_amount: Literal["gross", "net"] = "gross"


class ReconciliationSettings(_Strict):
    """Payout reconciliation (docs/reconciliation.md)."""

    amount_tolerance: float = Field(default=0.01, ge=0)
    # A paid payout without a books deposit this many days after arrival is missing_deposit.
    deposit_grace_days: int = Field(default=3, ge=0)
    # A deposit dated more than this many days from the payout's arrival is a timing_difference.
    timing_tolerance_days: int = Field(default=2, ge=0)
    # Effective fee (fee / gross) outside this band is a fee_anomaly.
    fee_min_pct: float = Field(default=1.5, ge=0)
    fee_max_pct: float = Field(default=4.0, ge=0)
    # Per payment type; types not listed use the defaults of PaymentTypeSettings.
    payment_types: dict[str, PaymentTypeSettings] = Field(default_factory=dict)


WRITEBACK_PAYMENT_TYPES = (
    "card_terminal", "payment_plan", "insurance", "membership",
    "outstanding_balance_collection", "patient_portal",
)  # fmt: skip
Timing = Literal["instant", "daily"]


class PaymentWriteback(_Strict):
    """Whether and how processor charges of one payment type are posted to the PMS ledger."""

    enabled: bool = False  # nothing is written to a ledger until the practice turns it on
    # instant: within a minute of the charge reaching the warehouse; daily: at writeback.daily_at.
    timing: Timing = "daily"
    amount: Literal["net", "gross"] = "net"
    # The PMS's own name for the payment type (Open Dental PayType definition, category 10).
    pms_pay_type: str = "Credit Card"


class StatusWriteback(_Strict):
    """Appointment confirmations and cancellations patients send by text."""

    enabled: bool = False
    timing: Timing = "instant"
    # A reply counts when, lower-cased and stripped of punctuation, it is one of these or
    # starts with one of them followed by a space.
    confirm_words: list[str] = ["c", "yes", "y", "confirm", "confirmed"]
    cancel_words: list[str] = ["x", "cancel", "cancelled", "i need to cancel"]
    # The reply applies to the patient's next scheduled appointment within this many days.
    horizon_days: int = Field(default=7, ge=1)
    # Open Dental: the "Appointment Confirmed" definition (category 2) a confirmation sets.
    confirmed_definition: str = "Appointment Confirmed"


class CommlogWriteback(_Strict):
    """Call summaries on the caller's patient record."""

    enabled: bool = False
    timing: Timing = "daily"
    # Open Dental commlog type (definition category 27) the summaries are filed under.
    commlog_type: str = "Misc"


class QuickBooksWriteback(_Strict):
    """Processor payouts booked in QuickBooks Online as one Deposit each."""

    enabled: bool = False
    connection: Identifier | None = None  # the quickbooks connection to write to
    timing: Timing = "daily"
    # Payouts arriving on or after this day are Chairside's to book (earlier ones were booked
    # by hand): the cut-over, so nothing is booked twice.
    payouts_from: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    bank_account: str = "Checking"
    fee_account: str = "Merchant Fees"
    refund_account: str = "Refunds Given"
    # Gross of each payment type to this income or clearing account (unlisted: default_account).
    income_accounts: dict[str, str] = Field(default_factory=dict)
    default_income_account: str = "Patient Revenue"
    # Per organisation location id: the QuickBooks class and department (location) of its lines.
    classes: dict[str, str] = Field(default_factory=dict)
    departments: dict[str, str] = Field(default_factory=dict)
    # Deposits per /batch call (1 = one POST per deposit); QuickBooks' maximum is disputed.
    batch_size: int = Field(default=30, ge=1, le=30)
    # Pacing below the 500 requests/minute per realm limit.
    requests_per_minute: int = Field(default=475, ge=1, le=500)


class WritebackSettings(_Strict):
    """What Chairside writes back, and when (docs/writeback.md)."""

    payments: dict[str, PaymentWriteback] = Field(default_factory=dict)
    statuses: StatusWriteback = StatusWriteback()
    commlogs: CommlogWriteback = CommlogWriteback()
    quickbooks: QuickBooksWriteback = QuickBooksWriteback()
    # When daily writes go out, in sync.schedule_timezone.
    daily_at: str = Field(default="18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # Sends of one write whose outcome stayed unknown before it is failed for ops to look at.
    max_attempts: int = Field(default=5, ge=1)

    @field_validator("payments")
    @classmethod
    def _known_types(cls, value: dict[str, PaymentWriteback]) -> dict[str, PaymentWriteback]:
        unknown = sorted(set(value) - set(WRITEBACK_PAYMENT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown payment type(s) {unknown} (known: {list(WRITEBACK_PAYMENT_TYPES)})"
            )
        return value

    def payment(self, payment_type: str) -> PaymentWriteback:
        return self.payments.get(payment_type, PaymentWriteback())


class Organisation(_Strict):
    id: Identifier
    name: str
    connections: list[Connection] = Field(min_length=1)
    locations: list[Location] = Field(default_factory=list)
    sync: SyncSettings = SyncSettings()
    identity: IdentitySettings = IdentitySettings()
    funnel: FunnelSettings = FunnelSettings()
    calls: CallSettings = CallSettings()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    writeback: WritebackSettings = WritebackSettings()

    @model_validator(mode="after")
    def _references(self) -> Organisation:
        problems = []
        connection_ids = [c.id for c in self.connections]
        location_ids = [x.id for x in self.locations]
        for kind, ids in (("connections", connection_ids), ("locations", location_ids)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                problems.append(f"{kind}: duplicate id(s) {dupes}; every id must be unique")
        for i, connection in enumerate(self.connections):
            for number, location_id in getattr(connection, "numbers", {}).items():
                if location_id not in location_ids:
                    problems.append(
                        f"connections[{i}].numbers[{number!r}]: {location_id!r} is not a "
                        f"location id (known: {location_ids})"
                    )
        for i, location in enumerate(self.locations):
            if location.connection not in connection_ids:
                problems.append(
                    f"locations[{i}].connection: {location.connection!r} is not a connection id "
                    f"(known: {connection_ids})"
                )
        books = self.writeback.quickbooks
        if books.enabled:
            vendor = {c.id: c.vendor for c in self.connections}.get(books.connection or "")
            if vendor != "quickbooks":
                known = [c.id for c in self.connections if c.vendor == "quickbooks"]
                problems.append(
                    f"writeback.quickbooks.connection: {books.connection!r} is not a quickbooks "
                    f"connection id (known: {known})"
                )
            if books.payouts_from is None:
                problems.append(
                    "writeback.quickbooks.payouts_from: set the first payout arrival day "
                    "Chairside books (earlier payouts stay as booked by hand)"
                )
            problems.extend(
                f"writeback.quickbooks.{kind}[{location_id!r}]: not a location id "
                f"(known: {location_ids})"
                for kind in ("classes", "departments")
                for location_id in getattr(books, kind)
                if location_id not in location_ids
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def connection(self, connection_id: str):
        for connection in self.connections:
            if connection.id == connection_id:
                return connection
        raise KeyError(f"no connection {connection_id!r} in organisation {self.id!r}")


def load_organisation(path: Path | str) -> Organisation:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    try:
        return Organisation.model_validate(_interpolate(raw, path))
    except ValidationError as error:
        raise ConfigError(_describe(path, error)) from None


def secret(env_name: str, *, purpose: str) -> str:
    """Read a secret by the env var name the config gives; the error never shows a value."""
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"environment variable {env_name} is not set (needed for {purpose})")
    return value


def _interpolate(value, path: Path):
    if isinstance(value, dict):
        return {k: _interpolate(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path) for v in value]
    if isinstance(value, str):

        def replace(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: ${{{name}}} is used but the variable is not set")

        return _INTERPOLATION.sub(replace, value)
    return value


def _describe(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: {error.error_count()} problem(s) in the organisation config:"]
    for item in error.errors():
        # Drop the vendor tag pydantic adds after the list index of a tagged union.
        loc = [p for i, p in enumerate(item["loc"]) if not (i and p in VENDORS)]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field: remove it or check its spelling"
        lines.append(f"  - {where or '(top level)'}: {message}")
    return "\n".join(lines)
