"""Patient record -> group-level person: records the model links automatically or a reviewer
merged are one person (transforms/identity/resolve.py)."""

from transforms.identity.dbt_inputs import settings
from transforms.identity.resolve import persons


def model(dbt, session):
    dbt.config(materialized="table")
    config = settings(dbt.source("organisation", "settings"))
    patients = dbt.ref("identity_patient_traits").pl()
    return persons(
        patients["patient_key"],
        dbt.ref("identity_patient_pairs").pl(),
        dbt.ref("identity_review_decisions").pl(),
        auto_link_probability=config["auto_link_probability"],
    ).to_arrow()
