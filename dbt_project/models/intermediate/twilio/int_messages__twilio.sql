-- Twilio -> canonical messages: one row per message (SMS/MMS), every direction.
-- direction: inbound (from the patient) for Twilio `inbound`; outbound for `outbound-api`,
-- `outbound-reply` and `outbound-call`. is_automated: true for TwiML replies (`outbound-reply`)
-- and texts sent during a call (`outbound-call`); NULL for `outbound-api`, which automations
-- (call-to-text) and staff apps both use; false for inbound texts.
-- org_location_id: the organisation location of the practice's number (`to` of an inbound
-- text, `from` of an outbound one) in the organisation config's number map.

with messages as (

    select
        *,
        case when direction = 'inbound' then 'inbound' else 'outbound' end as canonical_direction
    from {{ ref('stg_twilio__messages') }}

),

numbers as (

    select connection_id, phone_number, location_id
    from {{ source('organisation', 'phone_numbers') }}

)

select
    messages.connection_id,
    messages.sid as source_message_id,
    numbers.location_id as org_location_id,
    messages.canonical_direction as direction,
    case messages.direction
        when 'inbound' then false
        when 'outbound-reply' then true
        when 'outbound-call' then true
    end as is_automated,
    messages."from" as from_number,
    messages."to" as to_number,
    messages.date_sent as sent_at,
    messages.status as vendor_status,
    cast(messages.num_segments as integer) as segments,
    cast(messages.error_code as varchar) as error_code,
    messages.date_updated as source_updated_at,
    messages._extracted_at
from messages
left join numbers
    on messages.connection_id = numbers.connection_id
    and numbers.phone_number = case
        when messages.canonical_direction = 'inbound' then messages."to" else messages."from"
    end
