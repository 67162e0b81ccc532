-- Lead journeys: a Kimball accumulating snapshot, one row per journey from a lead's first
-- enquiry to checkout (or loss), with a timestamp per stage and the lags from the enquiry.
-- Every rule is written for analysts in docs/lead-funnel.md; the comments say why, not what.

{#- A lead starts a new journey of its identity: the person was checked out since the previous
    lead, or the journey so far had no booking and this lead comes after its unresponsive
    deadline (the earlier journey is then lost as unresponsive). -#}
{%- set starts_new_journey -%}
    (
        steps.checked_out_since_previous_lead
        or (
            (walk.journey_first_booking_at is null or walk.journey_first_booking_at >= steps.occurred_at)
            and steps.occurred_at > walk.journey_start_at + to_hours(24 * steps.unresponsive_after_days)
        )
    )
{%- endset %}

with recursive

settings as (
    select
        any_value(unresponsive_after_days) as unresponsive_after_days,
        any_value(cohort_period) as cohort_period
    from {{ source('organisation', 'settings') }}
),

-- Which stages each canonical status reaches (the organisation's mapping). A status in no list
-- (planned treatment, schedule notes, unmapped) never counts as a booking.
status_stages as (
    select
        canonical_status,
        bool_or(stage = 'arrived') as is_arrived,
        bool_or(stage = 'checked_out') as is_checked_out,
        bool_or(stage = 'lost_cancelled') as is_lost_cancelled,
        bool_or(stage = 'lost_no_show') as is_lost_no_show
    from {{ source('organisation', 'funnel_stage_statuses') }}
    group by canonical_status
),

appointments as (
    select
        appointments.appointment_key,
        appointments.patient_key,
        appointments.location_key,
        appointments.booked_at,
        appointments.start_at,
        appointments.cancelled_at,
        appointments.source_updated_at,
        coalesce(appointments.arrived_at, appointments.seated_at, appointments.start_at)
            as arrival_at,
        coalesce(appointments.dismissed_at, appointments.end_at) as checkout_at,
        status_stages.is_arrived,
        status_stages.is_checked_out,
        status_stages.is_lost_cancelled,
        status_stages.is_lost_no_show
    from {{ ref('int_appointments') }} as appointments
    inner join status_stages using (canonical_status)
),

enquiries as (
    select * from {{ ref('identity_enquiries') }}
),

-- The warehouse's own "now": the latest moment it has data for, never the machine's clock, so a
-- rebuild of the same data gives the same answer.
as_of as (
    select
        greatest(
            (select max(source_updated_at) from {{ ref('int_appointments') }}),
            (select max(occurred_at) from enquiries)
        ) as as_of_at
),

leads as (
    select
        enquiries.enquiry_key,
        enquiries.enquiry_type,
        enquiries.channel,
        enquiries.org_location_id,
        enquiries.occurred_at,
        enquiries.occurred_local_date,
        enquiries.phone_e164,
        enquiries.person_id,
        enquiries.is_new_contact,
        enquiries.source_appointment_key,
        case
            when enquiries.person_id is not null then 'person'
            when enquiries.phone_e164 is not null then 'phone'
            else 'enquiry'
        end as identity_basis,
        coalesce(enquiries.person_id, enquiries.phone_e164, enquiries.enquiry_key) as identity_key
    from enquiries
    where
        enquiries.enquiry_type = 'appointment_request'
        or (enquiries.enquiry_type in ('call', 'text') and enquiries.is_new_contact)
),

-- The appointments that can end or book an identity's journeys: every appointment of the
-- person's patient records (any location of the group), and the appointments the vendor links
-- the identity's requests to (the only link for a requester not resolved to a person).
identity_appointments as (
    select identity_keys.identity_key, appointments.*
    from (
        select distinct leads.identity_key, persons.patient_key
        from leads
        inner join {{ ref('identity_patient_persons') }} as persons using (person_id)
    ) as identity_keys
    inner join appointments using (patient_key)
    union
    select leads.identity_key, appointments.*
    from leads
    inner join appointments on appointments.appointment_key = leads.source_appointment_key
    -- A number no single person carries (a new caller, or a household's shared line): the
    -- patients registered with that number from the enquiry's day on are who it brought in.
    union
    select leads.identity_key, appointments.*
    from leads
    inner join (
        select patient_key, patient_since, unnest(phones) as phone_e164
        from {{ ref('identity_patient_traits') }}
    ) as carriers
        on carriers.phone_e164 = leads.phone_e164
        and carriers.patient_since >= leads.occurred_local_date
    inner join appointments using (patient_key)
    where leads.identity_basis = 'phone'
),

numbered_leads as (
    select
        identity_key,
        enquiry_key,
        occurred_at,
        source_appointment_key,
        row_number() over identity_leads as lead_number,
        lag(occurred_at) over identity_leads as previous_lead_at
    from leads
    window identity_leads as (partition by identity_key order by occurred_at, enquiry_key)
),

lead_steps as (
    select
        numbered_leads.*,
        settings.unresponsive_after_days,
        exists (
            select 1
            from identity_appointments as visits
            where
                visits.identity_key = numbered_leads.identity_key
                and visits.is_checked_out
                and visits.checkout_at > numbered_leads.previous_lead_at
                and visits.checkout_at < numbered_leads.occurred_at
        ) as checked_out_since_previous_lead,
        (
            select min(booked.booked_at)
            from identity_appointments as booked
            where
                booked.identity_key = numbered_leads.identity_key
                and booked.booked_at >= numbered_leads.occurred_at
                and (
                    booked.booked_at
                        <= numbered_leads.occurred_at + to_hours(24 * settings.unresponsive_after_days)
                    or booked.appointment_key = numbered_leads.source_appointment_key
                )
        ) as next_booking_at
    from numbered_leads
    cross join settings
),

-- Walk each identity's leads in order: whether a lead starts a new journey depends on where the
-- current journey started, so this is a recursion, one step per lead.
journey_walk as (
    select
        identity_key,
        lead_number,
        enquiry_key as first_enquiry_key,
        occurred_at as journey_start_at,
        next_booking_at as journey_first_booking_at
    from lead_steps
    where lead_number = 1

    union all

    select
        steps.identity_key,
        steps.lead_number,
        case when {{ starts_new_journey }} then steps.enquiry_key else walk.first_enquiry_key end,
        case when {{ starts_new_journey }} then steps.occurred_at else walk.journey_start_at end,
        case
            when {{ starts_new_journey }} then steps.next_booking_at
            else walk.journey_first_booking_at
        end
    from journey_walk as walk
    inner join lead_steps as steps
        on steps.identity_key = walk.identity_key and steps.lead_number = walk.lead_number + 1
),

journey_leads as (
    select
        walk.first_enquiry_key,
        steps.lead_number,
        leads.*
    from journey_walk as walk
    inner join lead_steps as steps using (identity_key, lead_number)
    inner join leads on leads.enquiry_key = steps.enquiry_key
),

journeys as (
    select
        first_leads.*,
        'J' || left(md5(first_leads.enquiry_key), 16) as journey_id,
        counts.lead_count,
        row_number() over identity_journeys as journey_number,
        lead(first_leads.occurred_at) over identity_journeys as next_journey_at
    from journey_leads as first_leads
    inner join (
        select first_enquiry_key, count(*) as lead_count
        from journey_leads
        group by first_enquiry_key
    ) as counts using (first_enquiry_key)
    where first_leads.enquiry_key = first_leads.first_enquiry_key
    window identity_journeys as (
        partition by first_leads.identity_key
        order by first_leads.occurred_at, first_leads.enquiry_key
    )
),

-- A journey's appointments: booked at or after its enquiry and before the identity's next
-- journey, in any stage's status (an appointment broken later was still booked), and within
-- unresponsive_after_days of the enquiry unless the vendor links a request of the journey to
-- it: a later booking answers nothing, the journey was already lost (an existing patient's
-- routine recall booked weeks after an unanswered request is no conversion of it).
journey_appointments as (
    select
        journeys.first_enquiry_key,
        booked.*
    from journeys
    cross join settings
    inner join identity_appointments as booked
        on booked.identity_key = journeys.identity_key
        and booked.booked_at >= journeys.occurred_at
        and (
            booked.booked_at <= journeys.occurred_at + to_hours(24 * settings.unresponsive_after_days)
            -- the vendor says a request of this journey was booked as it: always the answer
            or exists (
                select 1
                from journey_leads
                where
                    journey_leads.first_enquiry_key = journeys.first_enquiry_key
                    and journey_leads.source_appointment_key = booked.appointment_key
            )
        )
        and (journeys.next_journey_at is null or booked.booked_at < journeys.next_journey_at)
),

-- The booking: the appointment a request of the journey is linked to by its vendor (the
-- earliest such request), else the first appointment booked.
booked_appointments as (
    select journey_appointments.*
    from journey_appointments
    left join journey_leads as linking_leads
        on linking_leads.first_enquiry_key = journey_appointments.first_enquiry_key
        and linking_leads.source_appointment_key = journey_appointments.appointment_key
    qualify row_number() over (
        partition by journey_appointments.first_enquiry_key
        order by
            linking_leads.lead_number asc nulls last,
            journey_appointments.booked_at,
            journey_appointments.appointment_key
    ) = 1
),

-- The appointment a loss is read from: the last one booked (no later booking replaced it).
latest_appointments as (
    select *
    from journey_appointments
    qualify row_number() over (
        partition by first_enquiry_key order by booked_at desc, appointment_key desc
    ) = 1
),

appointment_stages as (
    select
        first_enquiry_key,
        min(arrival_at) filter (where is_arrived) as arrived_at,
        min(checkout_at) filter (where is_checked_out) as checked_out_at
    from journey_appointments
    group by first_enquiry_key
),

-- A call's end, so an automated text-back after a long voicemail is still recognised.
enquiry_ends as (
    select
        enquiries.phone_e164,
        enquiries.occurred_at,
        coalesce(calls.ended_at, enquiries.occurred_at) as ended_at
    from enquiries
    left join {{ ref('int_calls') }} as calls on calls.call_key = enquiries.enquiry_key
    where enquiries.phone_e164 is not null
),

-- A person getting back to someone: any outbound call (whatever its outcome), or a text that is
-- neither marked automated nor sent within 2 minutes of an enquiry from that number (Twilio
-- reports call-to-text automations as ordinary outbound-api texts).
human_touches as (
    select touches.phone_e164, touches.occurred_at
    from {{ ref('identity_outbound_touches') }} as touches
    where
        touches.touch_type = 'call'
        or (
            touches.touch_type = 'text'
            and not coalesce(touches.is_automated, false)
            and not exists (
                select 1
                from enquiry_ends
                where
                    enquiry_ends.phone_e164 = touches.phone_e164
                    and touches.occurred_at >= enquiry_ends.occurred_at
                    and touches.occurred_at <= enquiry_ends.ended_at + interval 2 minute
            )
        )
),

-- The first human touch to any number the journey's leads came from, after its enquiry and
-- before the identity's next journey.
first_touches as (
    select
        journeys.first_enquiry_key,
        min(human_touches.occurred_at) as first_touch_at
    from journeys
    inner join (
        select distinct first_enquiry_key, phone_e164
        from journey_leads
        where phone_e164 is not null
    ) as journey_numbers using (first_enquiry_key)
    inner join human_touches
        on human_touches.phone_e164 = journey_numbers.phone_e164
        and human_touches.occurred_at > journeys.occurred_at
        and (journeys.next_journey_at is null or human_touches.occurred_at < journeys.next_journey_at)
    group by journeys.first_enquiry_key
),

org_locations as (
    select location_key, any_value(org_location_id) as org_location_id
    from {{ ref('int_org_locations') }}
    group by location_key
),

stages as (
    select
        journeys.*,
        booked_appointments.appointment_key as booked_appointment_key,
        booked_appointments.booked_at,
        booked_org_locations.org_location_id as booked_org_location_id,
        least(first_touches.first_touch_at, booked_appointments.booked_at) as first_contact_at,
        appointment_stages.arrived_at,
        appointment_stages.checked_out_at,
        latest_appointments.start_at as latest_start_at,
        latest_appointments.cancelled_at as latest_cancelled_at,
        latest_appointments.source_updated_at as latest_updated_at,
        latest_appointments.is_lost_no_show as latest_is_no_show,
        latest_appointments.is_lost_cancelled as latest_is_cancelled,
        journeys.occurred_at + to_hours(24 * settings.unresponsive_after_days)
            as unresponsive_at,
        settings.cohort_period,
        as_of.as_of_at
    from journeys
    cross join settings
    cross join as_of
    left join booked_appointments using (first_enquiry_key)
    left join org_locations as booked_org_locations
        on booked_org_locations.location_key = booked_appointments.location_key
    left join latest_appointments using (first_enquiry_key)
    left join appointment_stages using (first_enquiry_key)
    left join first_touches using (first_enquiry_key)
),

outcomes as (
    select
        stages.*,
        case
            when stages.checked_out_at is not null then null
            when stages.latest_is_no_show then 'no_show'
            when stages.latest_is_cancelled then 'cancelled'
            when stages.booked_at is null and stages.unresponsive_at <= stages.as_of_at
                then 'unresponsive'
        end as lost_reason
    from stages
),

lost as (
    select
        outcomes.*,
        case outcomes.lost_reason
            when 'no_show' then outcomes.latest_start_at
            -- Most PMSs keep no cancellation time: the record's last change, or its start if that
            -- came first, is when the chair was given up.
            when 'cancelled' then coalesce(
                outcomes.latest_cancelled_at,
                least(outcomes.latest_start_at, outcomes.latest_updated_at)
            )
            when 'unresponsive' then outcomes.unresponsive_at
        end as lost_at
    from outcomes
)

select
    -- keys
    journey_id,
    person_id,
    first_enquiry_key,
    booked_appointment_key,
    -- what the journey is
    identity_basis,
    journey_number,
    lead_count,
    enquiry_type as first_enquiry_type,
    channel,
    coalesce(org_location_id, booked_org_location_id) as org_location_id,
    occurred_local_date as enquiry_local_date,
    cohort_period,
    cast(
        case cohort_period
            when 'week' then date_trunc('week', occurred_local_date)
            else date_trunc('month', occurred_local_date)
        end as date
    ) as cohort_period_start,
    is_new_contact as is_new_patient,
    -- stage timestamps (UTC)
    occurred_at as enquiry_at,
    first_contact_at,
    booked_at,
    arrived_at,
    checked_out_at,
    lost_at,
    lost_reason,
    -- lags from the enquiry
    (epoch(first_contact_at) - epoch(occurred_at)) / 60.0 as minutes_to_first_contact,
    (epoch(booked_at) - epoch(occurred_at)) / 3600.0 as hours_to_booked,
    (epoch(arrived_at) - epoch(occurred_at)) / 86400.0 as days_to_arrived,
    (epoch(checked_out_at) - epoch(occurred_at)) / 86400.0 as days_to_checked_out,
    (epoch(lost_at) - epoch(occurred_at)) / 86400.0 as days_to_lost,
    -- where it stands
    case
        when lost_reason is not null then 'lost'
        when checked_out_at is not null then 'checked_out'
        when arrived_at is not null then 'arrived'
        when booked_at is not null then 'booked'
        when first_contact_at is not null then 'contacted'
        else 'enquiry'
    end as current_stage,
    checked_out_at is null and lost_reason is null as is_open,
    next_journey_at,
    as_of_at
from lost
