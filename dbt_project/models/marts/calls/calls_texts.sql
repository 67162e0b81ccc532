-- Every text message with the other party's number standardised (E.164, as identity does) and,
-- for outbound texts, whether it was sent by automation. Twilio cannot tell a call-to-text from a
-- staff text (both use the REST API: is_automated NULL); such a text is read as the automatic
-- text-back when it follows an unanswered call from that number to that location within
-- var('calls_text_back_minutes') minutes, else as typed by staff. Definitions: docs/calls.md.

{{ config(materialized='ephemeral') }}

with messages as (
    select * from {{ ref('int_messages') }}
    where sent_at is not null
),

numbers as (
    select enquiry_key as message_key, phone_e164
    from {{ ref('identity_enquiries') }}
    where enquiry_type = 'text'
    union all
    select touch_key as message_key, phone_e164
    from {{ ref('identity_outbound_touches') }}
    where touch_type = 'text'
),

unanswered_calls as (
    select org_location_id, caller_key, ended_at
    from {{ ref('fct_calls') }}
    where direction = 'inbound' and not is_answered and caller_key is not null
),

texts as (
    select
        messages.message_key,
        messages.org_location_id,
        messages.direction,
        messages.is_automated,
        messages.sent_at,
        messages.vendor_status,
        numbers.phone_e164,
        {{ caller_key('numbers.phone_e164') }} as caller_key
    from messages
    left join numbers using (message_key)
),

after_unanswered_call as (
    select distinct texts.message_key
    from texts
    inner join unanswered_calls
        on unanswered_calls.caller_key = texts.caller_key
        and unanswered_calls.org_location_id is not distinct from texts.org_location_id
        and texts.sent_at >= unanswered_calls.ended_at
        and texts.sent_at
            <= unanswered_calls.ended_at + to_minutes({{ var('calls_text_back_minutes', 5) }})
    where texts.direction = 'outbound'
)

select
    texts.*,
    case
        when texts.direction = 'inbound' then false
        else coalesce(texts.is_automated, after_unanswered_call.message_key is not null)
    end as is_automated_text,
    texts.vendor_status in ('delivered', 'read') as is_delivered
from texts
left join after_unanswered_call using (message_key)
