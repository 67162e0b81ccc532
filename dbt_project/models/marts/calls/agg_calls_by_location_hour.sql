-- Call metrics per location, local date and local hour of the call's start (hours with at least
-- one call). Formulas: docs/calls.md; the counts are kept so any coarser grain can re-add them.

with settings as (
    select
        any_value(abandon_rate_formula) as abandon_rate_formula,
        any_value(short_abandon_seconds) as short_abandon_seconds,
        any_value(service_level_seconds) as service_level_seconds
    from {{ source('organisation', 'settings') }}
),

counted as (
    select
        org_location_id,
        local_date,
        local_hour,
        any_value(local_weekday) as local_weekday,
        {{ call_counts() }}
    from {{ ref('fct_calls') }}
    group by org_location_id, local_date, local_hour
)

select
    counted.*,
    {{ call_rates('counted') }}
from counted
cross join settings
