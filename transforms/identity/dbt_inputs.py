"""What the identity models (dbt_project/models/identity/*.py) read from the canonical layer,
shaped as ``transforms.identity.traits`` expects. The models pass the DuckDB relations of their
``dbt.ref`` / ``dbt.source`` calls (dbt finds a Python model's parents by reading those calls in
the model file itself)."""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.identity.standardise import phones_e164
from transforms.identity.traits import ENQUIRY_COLUMNS


def settings(relation) -> dict:
    """The organisation's identity settings (one row landed from the config) and today."""
    rows = relation.pl().to_dicts()
    if len(rows) != 1:
        raise ValueError(f"organisation settings must have exactly one row, found {len(rows)}")
    return {**rows[0], "today": date.today()}


def _org_locations(relation) -> pl.DataFrame:
    return relation.pl().select("location_key", "org_location_id")


def canonical_patients(patients, org_locations) -> pl.DataFrame:
    return (
        patients.pl()
        .join(_org_locations(org_locations), on="location_key", how="left")
        .select(
            "patient_key",
            "source_system",
            "connection_id",
            "org_location_id",
            # Since when the group knows the patient: the record's creation date where the PMS
            # gives it, else the first visit (CareStack reports no creation date).
            pl.coalesce("created_date", "first_visit_date").alias("patient_since"),
            "first_name",
            "preferred_name",
            "last_name",
            "birth_date",
            "email",
            "mobile_phone",
            "home_phone",
            "work_phone",
        )
    )


def _inbound(relation, *, key: str, kind: str, channel: str, at: str) -> pl.DataFrame:
    """Inbound calls or texts as enquiries: only the caller's number to go on."""
    return (
        relation.pl()
        .filter(pl.col("direction") == "inbound")
        .select(
            "source_system",
            "connection_id",
            "org_location_id",
            enquiry_key=key,
            enquiry_type=pl.lit(kind),
            channel=pl.lit(channel),
            occurred_at=at,
            phone="from_number",
        )
    )


def canonical_enquiries(requests, calls, texts, org_locations) -> pl.DataFrame:
    """Online appointment requests, inbound calls and inbound texts as one frame."""
    requests = (
        requests.pl()
        .join(_org_locations(org_locations), on="location_key", how="left")
        .select(
            "source_system",
            "connection_id",
            "org_location_id",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "phone",
            enquiry_key="appointment_request_key",
            enquiry_type=pl.lit("appointment_request"),
            channel="channel",
            occurred_at="requested_at",
            source_patient_key="patient_key",
            source_appointment_key="appointment_key",
        )
    )
    calls = _inbound(calls, key="call_key", kind="call", channel="phone", at="started_at")
    texts = _inbound(texts, key="message_key", kind="text", channel="text", at="sent_at")
    frames = [
        frame.with_columns(
            pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
            for name, dtype in ENQUIRY_COLUMNS.items()
        ).select(list(ENQUIRY_COLUMNS))
        for frame in (requests, calls, texts)
    ]
    return pl.concat(frames)


def outbound_touches(calls, texts, *, region: str) -> pl.DataFrame:
    """touch_key, touch_type (call | text), is_automated, connection_id, org_location_id,
    occurred_at, outcome (calls), phone_e164 (the number called or texted)."""
    calls = (
        calls.pl()
        .filter(pl.col("direction") == "outbound")
        .select(
            "connection_id",
            "org_location_id",
            "outcome",
            touch_key="call_key",
            touch_type=pl.lit("call"),
            is_automated=pl.lit(False),
            occurred_at="started_at",
            number="to_number",
        )
    )
    texts = (
        texts.pl()
        .filter(pl.col("direction") == "outbound")
        .select(
            "connection_id",
            "org_location_id",
            outcome=pl.lit(None, pl.String),
            touch_key="message_key",
            touch_type=pl.lit("text"),
            is_automated=pl.col("is_automated").fill_null(False),
            occurred_at="sent_at",
            number="to_number",
        )
    )
    touches = pl.concat([calls, texts.select(calls.columns)])
    return touches.with_columns(phone_e164=phones_e164(touches["number"], region)).drop("number")
