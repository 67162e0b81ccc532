-- Missed-call recovery: one row per missed caller per location per local day (the day's first
-- missed call anchors the row; metrics-and-matching 1.4) with what happened next: a callback
-- (outbound call or staff text to the number from any location of the group), the caller
-- calling back in and being answered first, the automatic text-back and the text conversation it
-- started, and an appointment booked within 7 days. Definitions: docs/calls.md.

{%- set text_back_minutes = var('calls_text_back_minutes', 5) %}

with calls as (
    select * from {{ ref('fct_calls') }}
),

texts as (
    select * from {{ ref('calls_texts') }}
),

-- The warehouse's own "now": the latest call or text it holds, never the machine's clock, so a
-- rebuild of the same data gives the same answer.
as_of as (
    select greatest(
        (select max(ended_at) from calls),
        (select max(sent_at) from texts)
    ) as as_of_at
),

missed as (
    select
        *,
        row_number() over day_of_caller as nth_of_day,
        count(*) over day_of_caller as n_missed_calls,
        max(ended_at) over day_of_caller as last_missed_ended_at
    from calls
    where is_missed_call
    -- A caller without a usable number cannot be recognised again: each call stands alone.
    window day_of_caller as (
        partition by org_location_id, coalesce(caller_key, call_key), local_date
        order by started_at, call_key
        rows between unbounded preceding and unbounded following
    )
),

anchors as (
    select * from missed where nth_of_day = 1
),

touches as (
    select caller_key, started_at as touch_at, 'call' as touch_type,
        call_outcome = 'outbound_answered' as is_connected
    from calls
    where direction = 'outbound' and caller_key is not null
    union all
    select caller_key, sent_at, 'text', is_delivered
    from texts
    where direction = 'outbound' and not is_automated_text and caller_key is not null
),

-- The group's first outbound touch within 7 days of the missed call's end.
callbacks as (
    select
        anchors.call_key,
        min(touches.touch_at) as first_callback_at,
        arg_min(touches.touch_type, touches.touch_at) as first_callback_type,
        coalesce(bool_or(
            touches.touch_type = 'call' and touches.is_connected
            and touches.touch_at <= anchors.ended_at + interval 24 hour
        ), false) as is_callback_connected_within_24h
    from anchors
    inner join touches
        on touches.caller_key = anchors.caller_key
        and touches.touch_at >= anchors.ended_at
        and touches.touch_at <= anchors.ended_at + interval 7 day
    group by anchors.call_key
),

-- The caller rang again (any location of the group) within 24 h and a person answered.
callbacks_in as (
    select anchors.call_key, min(answered.started_at) as answered_call_in_at
    from anchors
    inner join calls as answered
        on answered.caller_key = anchors.caller_key
        and answered.direction = 'inbound'
        and answered.is_answered
        and answered.started_at >= anchors.ended_at
        and answered.started_at <= anchors.ended_at + interval 24 hour
    group by anchors.call_key
),

text_backs as (
    select
        anchors.call_key,
        min(texts.sent_at) as text_back_at,
        bool_or(texts.is_delivered) as is_text_back_delivered
    from anchors
    inner join texts
        on texts.caller_key = anchors.caller_key
        and texts.org_location_id is not distinct from anchors.org_location_id
        and texts.direction = 'outbound'
        and texts.is_automated_text
        and texts.sent_at >= anchors.ended_at
        and texts.sent_at <= anchors.ended_at + to_minutes({{ text_back_minutes }})
    group by anchors.call_key
),

replies as (
    select anchors.call_key, min(texts.sent_at) as first_reply_at
    from anchors
    inner join texts
        on texts.caller_key = anchors.caller_key
        and texts.direction = 'inbound'
        and texts.sent_at >= anchors.ended_at
        and texts.sent_at <= anchors.ended_at + interval 24 hour
    group by anchors.call_key
),

reply_answers as (
    select replies.call_key, min(touches.touch_at) as staff_reply_at
    from replies
    inner join anchors using (call_key)
    inner join touches
        on touches.caller_key = anchors.caller_key
        and touches.touch_type = 'text'
        and touches.touch_at > replies.first_reply_at
        and touches.touch_at <= replies.first_reply_at + interval 24 hour
    group by replies.call_key
),

-- Appointments that count as a booking: a status some funnel stage knows (booked, kept or lost
-- later), never planned treatment, schedule notes or unmapped statuses.
appointments as (
    select appointments.appointment_key, appointments.patient_key, appointments.booked_at,
        persons.person_id
    from {{ ref('int_appointments') }} as appointments
    left join {{ ref('identity_patient_persons') }} as persons using (patient_key)
    where appointments.booked_at is not null
        and appointments.canonical_status in (
            select canonical_status from {{ source('organisation', 'funnel_stage_statuses') }}
        )
),

record_numbers as (
    select patient_key, {{ caller_key('phone_e164') }} as caller_key
    from (
        select patient_key, unnest(phones) as phone_e164
        from {{ ref('identity_patient_traits') }}
    )
),

-- Booked within 7 days by the caller's person, or by anyone whose record carries the number
-- (a family phone's household, a new patient registered with the number they called from).
booking_candidates as (
    select anchors.call_key, appointments.appointment_key, appointments.booked_at, 'person' as basis
    from anchors
    inner join appointments on appointments.person_id = anchors.person_id
    where appointments.booked_at > anchors.ended_at
        and appointments.booked_at <= anchors.ended_at + interval 7 day
    union all
    select anchors.call_key, appointments.appointment_key, appointments.booked_at, 'number'
    from anchors
    inner join record_numbers on record_numbers.caller_key = anchors.caller_key
    inner join appointments on appointments.patient_key = record_numbers.patient_key
    where appointments.booked_at > anchors.ended_at
        and appointments.booked_at <= anchors.ended_at + interval 7 day
),

bookings as (
    select
        call_key,
        min(booked_at) as first_booked_at,
        arg_min(appointment_key, (booked_at, basis <> 'person', appointment_key))
            as booked_appointment_key,
        arg_min(basis, (booked_at, basis <> 'person', appointment_key)) as booked_via
    from booking_candidates
    group by call_key
),

joined as (
    select
        anchors.*,
        as_of.as_of_at,
        callbacks.first_callback_at,
        callbacks.first_callback_type,
        coalesce(callbacks.is_callback_connected_within_24h, false)
            as is_callback_connected_within_24h,
        callbacks_in.answered_call_in_at,
        text_backs.text_back_at,
        text_backs.is_text_back_delivered,
        replies.first_reply_at,
        reply_answers.staff_reply_at,
        bookings.first_booked_at,
        bookings.booked_appointment_key,
        bookings.booked_via
    from anchors
    cross join as_of
    left join callbacks using (call_key)
    left join callbacks_in using (call_key)
    left join text_backs using (call_key)
    left join replies using (call_key)
    left join reply_answers using (call_key)
    left join bookings using (call_key)
)

select
    call_key as missed_call_key,
    org_location_id,
    location_timezone,
    caller_key,
    local_date,
    cast(date_trunc('week', local_date) as date) as week_start,
    call_outcome as missed_outcome,
    started_at as missed_at,
    ended_at as missed_ended_at,
    n_missed_calls,
    last_missed_ended_at,
    match_outcome,
    person_id,
    household_id,
    is_new_contact,
    first_callback_at,
    first_callback_type,
    date_diff('second', ended_at, first_callback_at) / 60.0 as minutes_to_callback,
    coalesce(first_callback_at <= ended_at + interval 1 hour, false) as is_callback_within_1h,
    coalesce(first_callback_at <= ended_at + interval 24 hour, false) as is_callback_within_24h,
    is_callback_connected_within_24h,
    answered_call_in_at,
    -- Self-recovered: the caller got through before the group reached out (or it never did).
    answered_call_in_at is not null
        and (first_callback_at is null or answered_call_in_at < first_callback_at)
        as is_self_recovered,
    text_back_at,
    text_back_at is not null as is_text_back_sent,
    coalesce(is_text_back_delivered, false) as is_text_back_delivered,
    first_reply_at,
    first_reply_at is not null as is_text_conversation_started,
    staff_reply_at,
    staff_reply_at is not null as is_text_conversation_answered,
    first_booked_at,
    booked_appointment_key,
    booked_via,
    first_booked_at is not null as is_booked_within_7d,
    as_of_at,
    as_of_at >= ended_at + interval 24 hour as is_24h_window_elapsed,
    as_of_at >= ended_at + interval 7 day as is_7d_window_elapsed,
    coalesce(is_new_contact, false) and first_booked_at is null
        and as_of_at >= ended_at + interval 7 day as is_new_caller_lost
from joined
