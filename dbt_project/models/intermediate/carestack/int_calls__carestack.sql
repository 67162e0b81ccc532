-- CareStack -> canonical calls: one row per (connection_id, CS Conversation call id).
--
-- CS Conversation (CareStack's own phone system) logs one record per call, with no legs: the
-- callType says what happened. Call Made / Call Received -> answered, Call Attempted (outbound,
-- nobody answered) and Missed Call -> missed, Voicemail -> voicemail. `duration` is the talk time
-- of answered calls and the ring time of missed and unanswered ones; how long an answered call
-- rang and when it was answered are not recorded (NULL). The record names only the other
-- party's number (`phoneNumber`): the practice's number is NULL.
-- org_location_id: the organisation location matched to the CareStack location (confirmed in
-- the config, or the same name; stg_carestack__location_matches); NULL while only proposed.

with calls as (

    select * from {{ ref('stg_carestack__conversation_calls') }}

),

matches as (

    select connection_id, carestack_location_id, location_id
    from {{ ref('stg_carestack__location_matches') }}
    where status in ('confirmed', 'exact')

),

classified as (

    select
        calls.*,
        matches.location_id as org_location_id,
        case
            when calls.call_type in ('Call Made', 'Call Attempted') then 'outbound'
            else 'inbound'
        end as direction,
        case calls.call_type
            when 'Call Made' then 'answered'
            when 'Call Received' then 'answered'
            when 'Call Attempted' then 'missed'
            when 'Missed Call' then 'missed'
            when 'Voicemail' then 'voicemail'
        end as outcome
    from calls
    left join matches
        on calls.connection_id = matches.connection_id
        and calls.location_id = matches.carestack_location_id

)

select
    connection_id,
    cast(id as varchar) as source_call_id,
    org_location_id,
    direction,
    case when direction = 'inbound' then phone_number end as from_number,
    case when direction = 'outbound' then phone_number end as to_number,
    start_time as started_at,
    cast(null as timestamptz) as answered_at,
    start_time + to_seconds(duration) as ended_at,
    case when outcome = 'missed' then cast(duration as integer) end as ring_seconds,
    case when outcome = 'answered' then cast(duration as integer) else 0 end as talk_seconds,
    cast(duration as integer) as duration_seconds,
    outcome,
    call_type as vendor_status,
    1 as n_legs,
    last_modified_on as source_updated_at,
    _extracted_at
from classified
