"""Scored pairs of patient records (any connection of the group) that may be one person:
splink's match weight and probability, whether the names agree, and a reviewer's explanation."""

from transforms.identity.match import score_patients, u_of


def model(dbt, session):
    dbt.config(materialized="table")
    patients = dbt.ref("identity_patient_traits").pl()
    u = u_of(dbt.ref("identity_model_levels").pl())
    return score_patients(patients, u).to_arrow()
