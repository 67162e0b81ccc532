"""One outcome per enquiry: exact / partial / none / household (transforms/identity/resolve.py)."""

from transforms.identity.dbt_inputs import settings
from transforms.identity.resolve import enquiry_outcomes, phone_index


def model(dbt, session):
    dbt.config(materialized="table")
    config = settings(dbt.source("organisation", "settings"))
    patients = dbt.ref("identity_patient_traits").pl()
    person_of = dbt.ref("identity_patient_persons").pl()
    return enquiry_outcomes(
        dbt.ref("identity_enquiry_traits").pl(),
        dbt.ref("identity_enquiry_pairs").pl(),
        person_of,
        phone_index(patients, person_of),
        dbt.ref("identity_review_decisions").pl(),
        auto_link_probability=config["auto_link_probability"],
        review_probability=config["review_probability"],
        auto_link_margin_weight=config["auto_link_margin_weight"],
    ).to_arrow()
