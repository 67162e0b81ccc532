-- The lead funnel by location, channel and cohort period (the period of the journey's enquiry):
-- counts per stage, conversion rates and times to stage. Counts are always shown; rates and times
-- only once the cohort's conversion window has closed, so young cohorts do not look worse than
-- they will be. Definitions: docs/lead-funnel.md.

with settings as (
    select cast(any_value(conversion_window_days) as integer) as conversion_window_days
    from {{ source('organisation', 'settings') }}
),

journeys as (
    select * from {{ ref('fct_lead_journeys') }}
),

cohorts as (
    select
        org_location_id,
        channel,
        cohort_period_start,
        any_value(cohort_period) as cohort_period,
        any_value(as_of_at) as as_of_at,
        count(*) as leads,
        sum(lead_count) as lead_enquiries,
        count(first_contact_at) as contacted,
        count(booked_at) as booked,
        count(arrived_at) as arrived,
        count(checked_out_at) as checked_out,
        count(*) filter (where lost_reason = 'cancelled') as lost_cancelled,
        count(*) filter (where lost_reason = 'no_show') as lost_no_show,
        count(*) filter (where lost_reason = 'unresponsive') as lost_unresponsive,
        count(*) filter (where is_open) as still_open,
        median(minutes_to_first_contact) as median_minutes_to_first_contact,
        quantile_cont(minutes_to_first_contact, 0.9) as p90_minutes_to_first_contact,
        median(hours_to_booked) as median_hours_to_booked,
        quantile_cont(hours_to_booked, 0.9) as p90_hours_to_booked,
        median(days_to_checked_out) as median_days_to_checked_out,
        quantile_cont(days_to_checked_out, 0.9) as p90_days_to_checked_out
    from journeys
    group by org_location_id, channel, cohort_period_start
),

windows as (
    select
        cohorts.*,
        cast(
            case cohorts.cohort_period
                when 'week' then cohorts.cohort_period_start + 6
                else last_day(cohorts.cohort_period_start)
            end as date
        ) as cohort_period_end,
        settings.conversion_window_days
    from cohorts
    cross join settings
),

closed as (
    select
        windows.*,
        -- Day grain, on the UTC calendar of the as-of moment.
        windows.cohort_period_end + windows.conversion_window_days
            <= cast(timezone('UTC', windows.as_of_at) as date) as cohort_closed
    from windows
)

select
    org_location_id,
    channel,
    cohort_period,
    cohort_period_start,
    cohort_period_end,
    cohort_period_end + conversion_window_days as cohort_closes_on,
    cohort_closed,
    as_of_at,
    -- counts (always shown)
    leads,
    lead_enquiries,
    contacted,
    booked,
    arrived,
    checked_out,
    lost_cancelled,
    lost_no_show,
    lost_unresponsive,
    still_open,
    -- conversion rates (closed cohorts only)
    case when cohort_closed then booked / nullif(leads, 0) end as lead_to_booked_rate,
    case when cohort_closed then arrived / nullif(booked, 0) end as booked_to_arrived_rate,
    case when cohort_closed then checked_out / nullif(arrived, 0) end
        as arrived_to_checked_out_rate,
    case when cohort_closed then checked_out / nullif(leads, 0) end as lead_to_checked_out_rate,
    -- times to stage (closed cohorts only)
    case when cohort_closed then median_minutes_to_first_contact end
        as median_minutes_to_first_contact,
    case when cohort_closed then p90_minutes_to_first_contact end as p90_minutes_to_first_contact,
    case when cohort_closed then median_hours_to_booked end as median_hours_to_booked,
    case when cohort_closed then p90_hours_to_booked end as p90_hours_to_booked,
    case when cohort_closed then median_days_to_checked_out end as median_days_to_checked_out,
    case when cohort_closed then p90_days_to_checked_out end as p90_days_to_checked_out
from closed
