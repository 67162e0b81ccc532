"""Every outbound call and text with the number it reached in E.164: how the funnel finds the
first time the practice got back to an enquirer (speed-to-lead)."""

from transforms.identity.dbt_inputs import outbound_touches, settings


def model(dbt, session):
    dbt.config(materialized="table")
    config = settings(dbt.source("organisation", "settings"))
    return outbound_touches(
        dbt.ref("int_calls"), dbt.ref("int_messages"), region=config["phone_region"]
    ).to_arrow()
