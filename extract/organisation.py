"""The organisation config as data: a snapshot of its locations and phone numbers in the
landing zone, so dbt can attach calls to locations and name locations as the group does.

Written whole on every transform (it is small); ``{landing}/_organisation/<table>.parquet``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from chairside.config import (
    WRITEBACK_PAYMENT_TYPES,
    CallSettings,
    FunnelSettings,
    IdentitySettings,
    Organisation,
    PaymentTypeSettings,
    ReconciliationSettings,
    WritebackSettings,
)
from extract.landing import write_table_atomically

LOCATIONS_SCHEMA = pa.schema(
    [
        ("location_id", pa.string()),
        ("location_name", pa.string()),
        ("connection_id", pa.string()),
        ("vendor", pa.string()),
        ("clinic_num", pa.int64()),
        ("pms_location_id", pa.string()),
        ("processor_location_ref", pa.string()),
    ]
)
PHONE_NUMBERS_SCHEMA = pa.schema(
    [("connection_id", pa.string()), ("phone_number", pa.string()), ("location_id", pa.string())]
)
# One row: the identity and funnel settings models read (defaults when there is no config).
SETTINGS_SCHEMA = pa.schema(
    [
        ("auto_link_probability", pa.float64()),
        ("auto_link_margin_weight", pa.float64()),
        ("review_probability", pa.float64()),
        ("phone_region", pa.string()),
        ("conversion_window_days", pa.int64()),
        ("unresponsive_after_days", pa.int64()),
        ("cohort_period", pa.string()),
        ("short_abandon_seconds", pa.int64()),
        ("service_level_seconds", pa.int64()),
        ("abandon_rate_formula", pa.string()),
        ("amount_tolerance", pa.float64()),
        ("deposit_grace_days", pa.int64()),
        ("timing_tolerance_days", pa.int64()),
        ("fee_min_pct", pa.float64()),
        ("fee_max_pct", pa.float64()),
        ("reply_horizon_days", pa.int64()),
    ]
)
PAYMENT_TYPES_SCHEMA = pa.schema(
    [
        ("payment_type", pa.string()),
        ("pms_amount", pa.string()),  # what a ledger entry keyed in at the PMS records
        ("writeback_enabled", pa.bool_()),
        ("writeback_timing", pa.string()),
        ("writeback_amount", pa.string()),  # what Chairside writes back
    ]
)
REPLY_WORDS_SCHEMA = pa.schema([("intent", pa.string()), ("word", pa.string())])
STAGE_STATUSES_SCHEMA = pa.schema([("stage", pa.string()), ("canonical_status", pa.string())])


def organisation_dir(landing_root: Path | str) -> Path:
    return Path(landing_root) / "_organisation"


def land_organisation(organisation: Organisation | None, landing_root: Path | str) -> None:
    """Write the snapshot; with no organisation, write empty tables (dbt still builds)."""
    vendors = {c.id: c.vendor for c in organisation.connections} if organisation else {}
    locations = [
        {
            "location_id": location.id,
            "location_name": location.name,
            "connection_id": location.connection,
            "vendor": vendors[location.connection],
            "clinic_num": location.clinic_num,
            "pms_location_id": location.pms_location_id,
            "processor_location_ref": location.processor_location_ref,
        }
        for location in (organisation.locations if organisation else [])
    ]
    numbers = [
        {"connection_id": connection.id, "phone_number": number, "location_id": location_id}
        for connection in (organisation.connections if organisation else [])
        for number, location_id in getattr(connection, "numbers", {}).items()
    ]
    identity = organisation.identity if organisation else IdentitySettings()
    funnel = organisation.funnel if organisation else FunnelSettings()
    calls = organisation.calls if organisation else CallSettings()
    reconciliation = organisation.reconciliation if organisation else ReconciliationSettings()
    writeback = organisation.writeback if organisation else WritebackSettings()
    settings = {
        **identity.model_dump(),
        **funnel.model_dump(exclude={"stages"}),
        **calls.model_dump(),
        **reconciliation.model_dump(exclude={"payment_types"}),
        "reply_horizon_days": writeback.statuses.horizon_days,
    }
    payment_types = [
        {
            "payment_type": name,
            **reconciliation.payment_types.get(name, PaymentTypeSettings()).model_dump(),
            "writeback_enabled": writeback.payment(name).enabled,
            "writeback_timing": writeback.payment(name).timing,
            "writeback_amount": writeback.payment(name).amount,
        }
        for name in sorted({*reconciliation.payment_types, *WRITEBACK_PAYMENT_TYPES})
    ]
    reply_words = [
        {"intent": intent, "word": word.strip().lower()}
        for intent, words in (
            ("confirm", writeback.statuses.confirm_words),
            ("cancel", writeback.statuses.cancel_words),
        )
        for word in words
    ]
    stages = [
        {"stage": stage, "canonical_status": status}
        for stage, statuses in funnel.stages.model_dump().items()
        for status in statuses
    ]
    folder = organisation_dir(landing_root)
    write_table_atomically(folder / "locations.parquet", locations, LOCATIONS_SCHEMA)
    write_table_atomically(folder / "phone_numbers.parquet", numbers, PHONE_NUMBERS_SCHEMA)
    write_table_atomically(folder / "settings.parquet", [settings], SETTINGS_SCHEMA)
    write_table_atomically(folder / "funnel_stage_statuses.parquet", stages, STAGE_STATUSES_SCHEMA)
    write_table_atomically(folder / "payment_types.parquet", payment_types, PAYMENT_TYPES_SCHEMA)
    write_table_atomically(folder / "reply_words.parquet", reply_words, REPLY_WORDS_SCHEMA)
