"""The records matching compares, standardised: patient records and enquiries.

``patient_traits`` takes canonical patients (int_patients with their organisation location);
``enquiry_traits`` takes canonical appointment requests and inbound calls and texts. Both return
the splink columns of ``model.TRAITS`` plus what the outcome rules and marts need.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.identity import standardise as std


def _phone_columns(frame: pl.DataFrame, columns: list[str], region: str) -> pl.DataFrame:
    """phone_1..2 and ``phones``: the record's distinct valid numbers in E.164, in order."""
    normalised = frame.select(
        pl.concat_list([std.phones_e164(frame[c], region) for c in columns]).alias("all")
    )["all"]
    phones = normalised.list.drop_nulls().list.unique(maintain_order=True)
    return frame.with_columns(
        phones=pl.when(phones.list.len() > 0).then(phones).otherwise(None),
        phone_1=phones.list.get(0, null_on_oob=True),
        phone_2=phones.list.get(1, null_on_oob=True),
    )


def _names(frame: pl.DataFrame, extra_first: str | None = None) -> pl.DataFrame:
    first = std.names(frame["first_name"], "first")
    forms = std.first_name_forms(first)
    if extra_first is not None:  # a preferred name also counts as the person's first name
        preferred = std.names(frame[extra_first], "first")
        forms = pl.select(
            pl.concat_list(forms.fill_null([]), std.first_name_forms(preferred).fill_null([]))
            .list.unique()
            .alias("forms")
        )["forms"]
        forms = pl.select(pl.when(forms.list.len() > 0).then(forms)).to_series()
    return frame.with_columns(
        first_name=first,
        first_name_forms=forms,
        last_name=std.names(frame["last_name"], "last"),
    )


def patient_traits(patients: pl.DataFrame, *, region: str, today: date) -> pl.DataFrame:
    """``patients``: patient_key, source_system, connection_id, org_location_id, patient_since,
    first_name, preferred_name, last_name, birth_date, email, mobile_phone, home_phone,
    work_phone."""
    frame = _names(patients, extra_first="preferred_name")
    frame = _phone_columns(frame, ["mobile_phone", "home_phone", "work_phone"], region)
    return frame.select(
        unique_id="patient_key",
        patient_key="patient_key",
        source_system="source_system",
        connection_id="connection_id",
        org_location_id="org_location_id",
        patient_since="patient_since",
        first_name="first_name",
        first_name_forms="first_name_forms",
        last_name="last_name",
        birth_date=std.birth_dates(frame["birth_date"], today),
        email=std.emails(frame["email"]),
        phone_1="phone_1",
        phone_2="phone_2",
        phones="phones",
    )


ENQUIRY_COLUMNS = {
    "enquiry_key": pl.String,
    "enquiry_type": pl.String,  # appointment_request | call | text
    "channel": pl.String,
    "source_system": pl.String,
    "connection_id": pl.String,
    "org_location_id": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
    "first_name": pl.String,
    "last_name": pl.String,
    "birth_date": pl.Date,
    "email": pl.String,
    "phone": pl.String,
    "source_patient_key": pl.String,
    "source_appointment_key": pl.String,
}


def enquiry_traits(enquiries: pl.DataFrame, *, region: str, today: date) -> pl.DataFrame:
    """``enquiries``: the columns of ``ENQUIRY_COLUMNS`` (calls and texts carry only a phone).

    ``phone_rejected`` marks a number that was given but cannot be valid: it is kept out of
    matching and shown in the review queue rather than silently dropped.
    """
    frame = _names(enquiries)
    frame = _phone_columns(frame, ["phone"], region)
    return frame.select(
        *(c for c in ENQUIRY_COLUMNS if c not in {"first_name", "last_name", "birth_date",
                                                   "email", "phone"}),
        unique_id="enquiry_key",
        first_name="first_name",
        first_name_forms="first_name_forms",
        last_name="last_name",
        birth_date=std.birth_dates(frame["birth_date"], today),
        email=std.emails(frame["email"]),
        phone_1="phone_1",
        phone_2="phone_2",
        phones="phones",
        phone_rejected=pl.col("phone").str.strip_chars().ne("") & pl.col("phone_1").is_null(),
        # Named: enough of a person to score against patients (a first and a last name).
        is_named=pl.col("first_name").is_not_null() & pl.col("last_name").is_not_null(),
    )  # fmt: skip
