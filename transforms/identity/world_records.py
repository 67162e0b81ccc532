"""Patient records and online requests of a simulated world in the canonical shape matching
reads, each with its true ``person_id``: for training the model and for the benchmark, which
need labelled data at sizes the HTTP pipeline would take minutes to extract."""

from __future__ import annotations

import polars as pl

from simulators.carestack import data as carestack_data
from simulators.carestack import wire as carestack_wire
from simulators.world import World


def patients(world: World) -> pl.DataFrame:
    """int_patients-shaped rows of every office, with ``person_id``."""
    links = world.table("truth_patient_links").select("office", "PatNum", "person_id")
    return (
        world.table("patients")
        .join(links, on=["office", "PatNum"], how="left")
        .select(
            patient_key=pl.concat_str("office", pl.lit(":"), pl.col("PatNum").cast(pl.String)),
            source_system=pl.lit("world"),
            connection_id="office",
            org_location_id=pl.col("office"),
            patient_since="SecDateEntry",
            first_name="FName",
            preferred_name="Preferred",
            last_name="LName",
            birth_date="Birthdate",
            email="Email",
            mobile_phone="WirelessPhone",
            home_phone="HmPhone",
            work_phone="WkPhone",
            person_id="person_id",
        )
    )


def requests(world: World) -> pl.DataFrame:
    """Online appointment requests of the CareStack offices (enquiry columns), with the
    requester's true ``person_id`` (null for people who never became patients)."""
    frames = []
    for account in carestack_wire.accounts(world).values():
        rows, truth = carestack_data.appointment_requests(world, account)
        frames.append(rows.join(truth.select("id", "person_id"), on="id", how="left"))
    rows = pl.concat(frames)
    birth = (
        pl.col("dateOfBirth").str.to_date(strict=False)
        if "dateOfBirth" in rows.columns
        else pl.lit(None, pl.Date)
    )
    return rows.select(
        enquiry_key=pl.format("request:{}", "id"),
        enquiry_type=pl.lit("appointment_request"),
        channel=pl.lit("online booking"),
        source_system=pl.lit("world"),
        connection_id=pl.lit("world"),
        org_location_id=pl.lit(None, pl.String),
        occurred_at=pl.col("createdOn").str.to_datetime(time_zone="UTC", strict=False),
        first_name="firstName",
        last_name="lastName",
        birth_date=birth,
        email="email",
        phone="phone",
        source_patient_key=pl.lit(None, pl.String),
        source_appointment_key=pl.lit(None, pl.String),
        person_id="person_id",
    )
