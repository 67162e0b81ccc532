-- Text messaging per location and local month, and for the whole group (is_group_total): texts
-- in and out, and the PEOPLE reached and replying, each counted once however many practices know
-- them. A contact is the group-level person when one person carries the number (identity), else
-- the number itself (a family phone: one household), never a patient record. Adding up
-- locations' people double-counts people texted by two locations: use the group-total rows.
-- patient_records_reached is what a per-record count reports (a peer product's figure: a patient
-- of two practices counts twice). Definitions: docs/calls.md.

with texts as (
    select * from {{ ref('calls_texts') }}
),

timezones as (
    select * from {{ ref('calls_location_timezones') }}
),

people as (
    select * from {{ ref('calls_phone_people') }}
),

contacts as (
    select
        texts.*,
        cast(
            date_trunc('month', timezone(coalesce(timezones.timezone, 'UTC'), texts.sent_at))
            as date
        ) as month_start,
        -- A text whose number could not be read is its own contact.
        coalesce(people.person_id, texts.caller_key, texts.message_key) as contact_key,
        coalesce(people.person_patient_records, 1) as contact_records,
        texts.direction = 'outbound'
            and coalesce(texts.vendor_status, '') not in ('failed', 'undelivered', 'canceled')
            as is_reaching
    from texts
    left join timezones using (org_location_id)
    left join people using (phone_e164)
),

-- A contact replied in a month when they texted the location after its first text to them that
-- month reached them.
first_reach as (
    select org_location_id, month_start, contact_key, min(sent_at) as first_reached_at
    from contacts
    where is_reaching
    group by org_location_id, month_start, contact_key
),

flagged as (
    select
        contacts.*,
        contacts.direction = 'inbound'
            and contacts.sent_at > first_reach.first_reached_at as is_reply
    from contacts
    left join first_reach
        on first_reach.org_location_id is not distinct from contacts.org_location_id
        and first_reach.month_start = contacts.month_start
        and first_reach.contact_key = contacts.contact_key
),

-- What a count per patient record reports: a contact resolved to a person counts once per patient
-- record the person has in the group (a patient of two practices: twice); a household or unknown
-- number once.
reached_contacts as (
    select distinct org_location_id, month_start, contact_key, contact_records
    from flagged
    where is_reaching
),

counted as (
    select
        org_location_id,
        month_start,
        grouping(org_location_id) = 1 as is_group_total,
        count(*) filter (where direction = 'inbound') as inbound_messages,
        count(*) filter (where direction = 'outbound') as outbound_messages,
        count(*) filter (where direction = 'outbound' and is_automated_text) as automated_messages,
        count(distinct contact_key) filter (where direction = 'outbound') as people_texted,
        count(distinct contact_key) filter (where is_reaching) as people_reached,
        count(distinct contact_key) filter (where is_reply) as people_replied,
        count(distinct contact_key) filter (where direction = 'inbound') as people_texting_in
    from flagged
    group by grouping sets ((org_location_id, month_start), (month_start))
),

records_counted as (
    select org_location_id, month_start, false as is_group_total,
        sum(contact_records) as patient_records_reached
    from reached_contacts
    group by org_location_id, month_start
    union all
    select null, month_start, true, sum(contact_records)
    from (select distinct month_start, contact_key, contact_records from reached_contacts)
    group by month_start
)

select
    counted.org_location_id,
    counted.month_start,
    counted.is_group_total,
    counted.inbound_messages,
    counted.outbound_messages,
    counted.automated_messages,
    counted.people_texted,
    counted.people_reached,
    counted.people_replied,
    counted.people_texting_in,
    coalesce(records_counted.patient_records_reached, 0) as patient_records_reached,
    counted.people_replied / nullif(counted.people_reached, 0) as reply_rate
from counted
left join records_counted
    on records_counted.org_location_id is not distinct from counted.org_location_id
    and records_counted.month_start = counted.month_start
    and records_counted.is_group_total = counted.is_group_total
