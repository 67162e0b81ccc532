"""Scored pairs of patient records (any connection of the group) that may be one person:
splink's match weight and probability, whether the names agree, and a reviewer's explanation."""

from transforms.identity.match import score_patients


def model(dbt, session):
    dbt.config(materialized="table")
    patients = dbt.ref("identity_patient_traits").pl()
    return score_patients(patients).to_arrow()
