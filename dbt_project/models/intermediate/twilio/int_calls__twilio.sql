-- Twilio -> canonical calls: ONE row per caller session, i.e. per root call leg (no
-- parent_call_sid), with its child legs (the ring group's `outbound-dial` legs: one per desk
-- phone, transfers) collapsed into it.
--
-- The modelling trap: Twilio answers every inbound call with TwiML, so the parent inbound leg
-- is `completed` whatever happened; the outcome comes from the children:
--   answered           a child leg completed (a person picked up);
--   abandoned          every child canceled: the caller hung up while it rang (ring_seconds
--                      lets a mart apply its short-abandon threshold);
--   voicemail          nobody picked up and the caller stayed on at least
--                      var('twilio_voicemail_min_seconds') after the ring group gave up (the
--                      greeting, then a message). Twilio Recordings are not extracted: when
--                      they are, a recording on the call replaces this rule;
--   missed / busy / failed   nobody picked up (no-answer; all busy; all failed), no voicemail;
--   abandoned_in_menu  no child leg: the caller hung up in the menu, never offered to staff.
-- Outbound calls (outbound-api) take the root leg's own status: completed -> answered, busy,
-- failed, anything else (no-answer, canceled) -> missed.
-- A call with a leg not final yet (queued, ringing, in-progress) is not a canonical call yet:
-- it is left out until a sync sees it ended (the Twilio connector re-reads recent calls).
--
-- org_location_id: the organisation location of the practice's number (`to` of an inbound call,
-- `from` of an outbound one) in the organisation config's number map.

with legs as (

    select * from {{ ref('stg_twilio__calls') }}

),

children as (

    select
        connection_id,
        parent_call_sid,
        count(*) as n_children,
        count(*) filter (where status = 'completed') as n_answered,
        count(*) filter (where status = 'canceled') as n_canceled,
        count(*) filter (where status = 'busy') as n_busy,
        count(*) filter (where status = 'failed') as n_failed,
        count(*) filter (where status in ('queued', 'ringing', 'in-progress')) as n_live,
        min(start_time) as ringing_at,
        max(end_time) as rang_until,
        -- a leg's duration counts from its answer: the answer is its end minus its duration
        min(end_time - to_seconds(duration)) filter (where status = 'completed') as answered_at,
        sum(duration) filter (where status = 'completed') as talk_seconds,
        max(date_updated) as date_updated,
        max(_extracted_at) as _extracted_at
    from legs
    where parent_call_sid is not null
    group by connection_id, parent_call_sid

),

numbers as (

    select connection_id, phone_number, location_id
    from {{ source('organisation', 'phone_numbers') }}

),

sessions as (

    select
        roots.connection_id,
        roots.sid,
        case when roots.direction = 'inbound' then 'inbound' else 'outbound' end as direction,
        roots."from" as from_number,
        roots."to" as to_number,
        roots.status,
        roots.start_time,
        roots.end_time,
        roots.duration,
        coalesce(children.n_children, 0) as n_children,
        children.n_answered,
        children.n_canceled,
        children.n_busy,
        children.n_failed,
        children.ringing_at,
        children.rang_until,
        children.talk_seconds as children_talk_seconds,
        children.answered_at as child_answered_at,
        roots.status in ('completed', 'busy', 'failed', 'no-answer', 'canceled')
            and coalesce(children.n_live, 0) = 0 as is_final,
        greatest(roots.date_updated, children.date_updated) as source_updated_at,
        greatest(roots._extracted_at, children._extracted_at) as _extracted_at
    from legs as roots
    left join children
        on roots.connection_id = children.connection_id
        and roots.sid = children.parent_call_sid
    where roots.parent_call_sid is null

),

outcomes as (

    select
        *,
        case
            when direction = 'outbound' then
                case status
                    when 'completed' then 'answered'
                    when 'busy' then 'busy'
                    when 'failed' then 'failed'
                    else 'missed'
                end
            when n_children = 0 then
                case status
                    when 'completed' then 'abandoned_in_menu'
                    when 'busy' then 'busy'
                    when 'failed' then 'failed'
                    else 'abandoned'
                end
            when n_answered > 0 then 'answered'
            when n_canceled = n_children then 'abandoned'
            when date_diff('second', rang_until, end_time)
                >= {{ var('twilio_voicemail_min_seconds', 12) }} then 'voicemail'
            when n_busy = n_children then 'busy'
            when n_failed = n_children then 'failed'
            else 'missed'
        end as outcome,
        case
            when direction = 'outbound' and status = 'completed'
                then end_time - to_seconds(duration)
            when direction = 'inbound' then child_answered_at
        end as answered_at,
        case when direction = 'inbound' then to_number else from_number end as practice_number
    from sessions
    where is_final

),

timed as (

    select
        *,
        -- ringing: from the first ring (the root itself when outbound) to the answer, or to
        -- when the ringing stopped; a menu hang-up never rang
        case
            when direction = 'outbound' then start_time
            when n_children > 0 then ringing_at
        end as ring_from,
        coalesce(answered_at, case when direction = 'outbound' then end_time else rang_until end)
            as ring_until
    from outcomes

)

select
    timed.connection_id,
    timed.sid as source_call_id,
    numbers.location_id as org_location_id,
    timed.direction,
    timed.from_number,
    timed.to_number,
    timed.start_time as started_at,
    timed.answered_at,
    timed.end_time as ended_at,
    cast(date_diff('second', timed.ring_from, timed.ring_until) as integer) as ring_seconds,
    cast(case
        when timed.outcome <> 'answered' then 0
        when timed.direction = 'outbound' then timed.duration
        else timed.children_talk_seconds
    end as integer) as talk_seconds,
    cast(date_diff('second', timed.start_time, timed.end_time) as integer) as duration_seconds,
    timed.outcome,
    timed.status as vendor_status,
    cast(1 + timed.n_children as integer) as n_legs,
    timed.source_updated_at,
    timed._extracted_at
from timed
left join numbers
    on timed.connection_id = numbers.connection_id
    and timed.practice_number = numbers.phone_number
