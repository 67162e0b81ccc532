"""Scored (enquiry, patient record) candidate pairs of every named enquiry."""

from transforms.identity.match import score_enquiries


def model(dbt, session):
    dbt.config(materialized="table")
    enquiries = dbt.ref("identity_enquiry_traits").pl()
    patients = dbt.ref("identity_patient_traits").pl()
    return score_enquiries(enquiries, patients).to_arrow()
