-- One row per stage a lead journey has reached (Kimball's transaction fact beside the
-- accumulating snapshot): for stage-by-stage timelines and counts of what happened in a period
-- (e.g. bookings made in October, whichever month their enquiry came in). Definitions:
-- docs/lead-funnel.md.

with journeys as (
    select * from {{ ref('fct_lead_journeys') }}
),

stages as (
    select journey_id, 1 as stage_order, 'enquiry' as stage, enquiry_at as stage_at from journeys
    union all
    select journey_id, 2, 'contacted', first_contact_at from journeys
    union all
    select journey_id, 3, 'booked', booked_at from journeys
    union all
    select journey_id, 4, 'arrived', arrived_at from journeys
    union all
    select journey_id, 5, 'checked_out', checked_out_at from journeys
    union all
    select journey_id, 6, 'lost', lost_at from journeys
)

select
    md5(stages.journey_id || ':' || stages.stage) as journey_event_id,
    stages.journey_id,
    stages.stage_order,
    stages.stage,
    stages.stage_at,
    case when stages.stage = 'lost' then journeys.lost_reason end as lost_reason,
    (epoch(stages.stage_at) - epoch(journeys.enquiry_at)) / 60.0 as minutes_since_enquiry,
    journeys.person_id,
    journeys.org_location_id,
    journeys.channel,
    journeys.cohort_period_start,
    journeys.is_new_patient
from stages
inner join journeys using (journey_id)
where stages.stage_at is not null
