-- One row per call (the caller's session, vendor legs collapsed: int_calls) with the outcome the
-- call metrics count, the location's local date and hour, the wait, the service-level flag and
-- who called. Definitions and formulas: docs/calls.md (metrics-and-matching section 1).

with settings as (
    select
        any_value(short_abandon_seconds) as short_abandon_seconds,
        any_value(service_level_seconds) as service_level_seconds
    from {{ source('organisation', 'settings') }}
),

calls as (
    select * from {{ ref('int_calls') }}
),

timezones as (
    select * from {{ ref('calls_location_timezones') }}
),

-- Who called: one identity row per inbound call (enquiry_key = call_key).
callers as (
    select enquiry_key, phone_e164, match_outcome, person_id, household_id, is_new_contact
    from {{ ref('identity_enquiries') }}
    where enquiry_type = 'call'
),

-- The number each outbound call dialled, standardised like the callers' numbers.
dialled as (
    select touch_key, phone_e164
    from {{ ref('identity_outbound_touches') }}
    where touch_type = 'call'
),

classified as (
    select
        calls.*,
        coalesce(timezones.timezone, 'UTC') as location_timezone,
        case
            when calls.direction = 'outbound' then
                case
                    when calls.outcome = 'answered' then 'outbound_answered'
                    else 'outbound_attempt'
                end
            -- The caller hung up while the ring group rang: short when it had no real chance to
            -- be answered (under the threshold); a ring time the vendor did not record stays long.
            when calls.outcome = 'abandoned' and calls.ring_seconds < settings.short_abandon_seconds
                then 'short_abandon'
            when calls.outcome in ('busy', 'failed') then 'busy_or_failed'
            else calls.outcome
        end as call_outcome,
        {{ caller_key(
            "case when calls.direction = 'inbound' then callers.phone_e164"
            ~ " else dialled.phone_e164 end"
        ) }} as caller_key,
        callers.match_outcome,
        callers.person_id,
        callers.household_id,
        callers.is_new_contact,
        settings.service_level_seconds
    from calls
    cross join settings
    left join timezones on timezones.org_location_id = calls.org_location_id
    left join callers on callers.enquiry_key = calls.call_key
    left join dialled on dialled.touch_key = calls.call_key
),

localised as (
    select
        *,
        timezone(location_timezone, started_at) as local_started_at,
        -- Does the phone system record how long answered calls waited (CS Conversation does
        -- not)? If not, its calls stay out of service level: counting only their unanswered
        -- calls would understate it.
        coalesce(
            bool_or(direction = 'inbound' and outcome = 'answered' and ring_seconds is not null)
                over (partition by connection_id),
            false
        ) as records_answer_wait,
        -- Offered: an inbound call that reached the ring group (a menu hang-up never did).
        direction = 'inbound' and call_outcome <> 'abandoned_in_menu' as is_offered
    from classified
)

select
    call_key,
    source_system,
    connection_id,
    source_call_id,
    org_location_id,
    location_timezone,
    direction,
    call_outcome,
    outcome as canonical_outcome,
    vendor_status,
    caller_key,
    started_at,
    answered_at,
    ended_at,
    local_started_at,
    cast(local_started_at as date) as local_date,
    cast(extract(hour from local_started_at) as integer) as local_hour,
    cast(isodow(local_started_at) as integer) as local_weekday,
    dayname(local_started_at) as local_weekday_name,
    ring_seconds as wait_seconds,
    talk_seconds,
    duration_seconds,
    is_offered,
    call_outcome = 'answered' as is_answered,
    call_outcome = 'abandoned' as is_abandoned,
    call_outcome = 'short_abandon' as is_short_abandon,
    call_outcome = 'voicemail' as is_voicemail,
    call_outcome in ('missed', 'busy_or_failed', 'abandoned', 'voicemail') as is_missed_call,
    -- NULL for calls outside the service-level count: not offered, short abandons (no chance to
    -- answer), calls of a phone system that does not record answer waits, and answered calls
    -- whose wait is missing.
    case
        when not is_offered or call_outcome = 'short_abandon' or not records_answer_wait then null
        when call_outcome = 'answered' then ring_seconds <= service_level_seconds
        else false
    end as is_answered_within_sl,
    match_outcome,
    person_id,
    household_id,
    is_new_contact,
    n_legs
from localised
