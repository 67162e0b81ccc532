"""The matching model as this build scores: every comparison level with its m (trained,
transforms/identity/model.json), its u (estimated on this group's own patients) and weight."""

from transforms.identity.match import model_levels, population_u


def model(dbt, session):
    dbt.config(materialized="table")
    patients = dbt.ref("identity_patient_traits").pl()
    return model_levels(population_u(patients)).to_arrow()
