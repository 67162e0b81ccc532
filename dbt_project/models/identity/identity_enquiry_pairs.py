"""Scored (enquiry, patient record) candidate pairs of every named enquiry."""

from transforms.identity.match import score_enquiries, u_of


def model(dbt, session):
    dbt.config(materialized="table")
    enquiries = dbt.ref("identity_enquiry_traits").pl()
    patients = dbt.ref("identity_patient_traits").pl()
    u = u_of(dbt.ref("identity_model_levels").pl())
    return score_enquiries(enquiries, patients, u).to_arrow()
