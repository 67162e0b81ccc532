"""Enquiries standardised for matching: every online appointment request, inbound call and
inbound text, with the traits it carries (calls and texts: the caller's number only)."""

from transforms.identity.dbt_inputs import canonical_enquiries, settings
from transforms.identity.traits import enquiry_traits


def model(dbt, session):
    dbt.config(materialized="table")
    config = settings(dbt.source("organisation", "settings"))
    enquiries = canonical_enquiries(
        dbt.ref("int_appointment_requests"),
        dbt.ref("int_calls"),
        dbt.ref("int_messages"),
        dbt.ref("int_org_locations"),
    )
    return enquiry_traits(
        enquiries, region=config["phone_region"], today=config["today"]
    ).to_arrow()
