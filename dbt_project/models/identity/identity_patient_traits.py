"""Patient records standardised for matching (transforms/identity/traits.py): names in lower-case
ASCII with their nickname forms, emails, birth dates, phone numbers in E.164 (invalid numbers
dropped). One row per canonical patient of every connection."""

from transforms.identity.dbt_inputs import canonical_patients, settings
from transforms.identity.traits import patient_traits


def model(dbt, session):
    dbt.config(materialized="table")
    config = settings(dbt.source("organisation", "settings"))
    patients = canonical_patients(dbt.ref("int_patients"), dbt.ref("int_org_locations"))
    return patient_traits(patients, region=config["phone_region"], today=config["today"]).to_arrow()
