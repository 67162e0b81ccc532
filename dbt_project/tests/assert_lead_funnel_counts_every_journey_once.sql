-- agg_lead_funnel counts every journey of fct_lead_journeys exactly once, and every journey is
-- in exactly one state: checked out, lost for one reason, or still open. Returns a row when not.
with funnel as (
    select
        coalesce(sum(leads), 0) as leads,
        coalesce(sum(checked_out + lost_cancelled + lost_no_show + lost_unresponsive + still_open), 0)
            as states
    from {{ ref('agg_lead_funnel') }}
),

journeys as (
    select count(*) as journeys from {{ ref('fct_lead_journeys') }}
)

select funnel.leads, funnel.states, journeys.journeys
from funnel
cross join journeys
where funnel.leads <> journeys.journeys or funnel.states <> journeys.journeys
