-- Call metrics per location, local weekday and local hour, over every date the warehouse holds:
-- the "when do we lose callers" view. Same formulas as agg_calls_by_location_hour (docs/calls.md).

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
        local_weekday,
        any_value(local_weekday_name) as local_weekday_name,
        local_hour,
        count(distinct local_date) as days_with_calls,
        min(local_date) as first_local_date,
        max(local_date) as last_local_date,
        {{ call_counts() }}
    from {{ ref('fct_calls') }}
    group by org_location_id, local_weekday, local_hour
)

select
    counted.*,
    {{ call_rates('counted') }}
from counted
cross join settings
