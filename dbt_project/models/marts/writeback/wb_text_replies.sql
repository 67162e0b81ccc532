-- Patients' text replies that confirm or cancel an appointment: one row per inbound text whose
-- words say confirm or cancel (organisation.reply_words), with the appointment it applies to.
-- The reply applies to the sender's next appointment that is still scheduled, starting within
-- writeback.statuses.horizon_days after the text; the sender must resolve to one person
-- (identity_enquiries: exactly one person carries the number), never a household.
-- writeback_state:
--   ready           one person, one next appointment, in a PMS that takes status writes
--   applied         the appointment already shows the requested status
--   no_person       the number is unknown or shared by a household: staff decide
--   no_appointment  the person has no scheduled appointment in the horizon
--   unsupported     the PMS's API takes no status writes (CareStack): staff enter it
-- The text itself is never published: only its intent.

with words as (

    select intent, word from {{ source('organisation', 'reply_words') }}

),

settings as (

    select cast(reply_horizon_days as integer) as horizon_days
    from {{ source('organisation', 'settings') }}

),

texts as (

    select
        messages.message_key,
        messages.source_message_id,
        messages.connection_id,
        messages.org_location_id,
        messages.sent_at as received_at,
        trim(regexp_replace(lower(bodies.body), '[^a-z ]', ' ', 'g')) as reply
    from {{ ref('int_messages') }} as messages
    inner join {{ ref('stg_twilio__messages') }} as bodies
        on bodies.connection_id = messages.connection_id
        and bodies.sid = messages.source_message_id
    where messages.source_system = 'twilio'
      and messages.direction = 'inbound'

),

intents as (

    -- The first matching word decides; a reply matching both intents counts as neither.
    select
        texts.message_key,
        min(words.intent) as intent,
        count(distinct words.intent) as n_intents
    from texts
    inner join words
        on texts.reply = words.word or starts_with(texts.reply, words.word || ' ')
    group by texts.message_key

),

replies as (

    select texts.* exclude (reply), intents.intent
    from texts
    inner join intents using (message_key)
    where intents.n_intents = 1

),

senders as (

    select enquiry_key as message_key, match_outcome, person_id
    from {{ ref('identity_enquiries') }}
    where enquiry_type = 'text'

),

appointments as (

    select
        persons.person_id,
        appointments.appointment_key,
        appointments.source_system,
        appointments.connection_id,
        appointments.source_appointment_id,
        appointments.source_patient_id,
        appointments.canonical_status,
        appointments.start_at
    from {{ ref('int_appointments') }} as appointments
    inner join {{ ref('identity_patient_persons') }} as persons
        on persons.patient_key = appointments.patient_key

),

candidates as (

    -- For a reply: the person's appointments that were still open when the text came.
    select
        replies.message_key,
        appointments.*,
        row_number() over (
            partition by replies.message_key
            order by appointments.start_at, appointments.appointment_key
        ) as rank
    from replies
    cross join settings
    inner join senders using (message_key)
    inner join appointments
        on appointments.person_id = senders.person_id
        and appointments.start_at > replies.received_at
        and appointments.start_at <= replies.received_at + to_days(settings.horizon_days)
        and appointments.canonical_status in ('scheduled', 'confirmed', 'cancelled', 'no_show',
                                              'cancelled_or_no_show', 'unscheduled')
    where senders.match_outcome = 'exact'

)

select
    replies.message_key,
    replies.source_message_id,
    replies.connection_id as phone_connection_id,
    replies.org_location_id,
    replies.received_at,
    replies.intent,
    senders.match_outcome as sender_match_outcome,
    senders.person_id,
    candidates.appointment_key,
    candidates.source_system as pms_vendor,
    candidates.connection_id as pms_connection_id,
    candidates.source_appointment_id,
    candidates.source_patient_id,
    candidates.start_at as appointment_start_at,
    candidates.canonical_status as appointment_status,
    case
        when coalesce(senders.match_outcome, 'none') <> 'exact' then 'no_person'
        when candidates.appointment_key is null then 'no_appointment'
        when replies.intent = 'confirm' and candidates.canonical_status = 'confirmed' then 'applied'
        when replies.intent = 'cancel'
            and candidates.canonical_status not in ('scheduled', 'confirmed') then 'applied'
        when replies.intent = 'confirm' and candidates.canonical_status <> 'scheduled'
            then 'no_appointment'
        when candidates.source_system not in ('opendental', 'nexhealth') then 'unsupported'
        else 'ready'
    end as writeback_state
from replies
left join senders using (message_key)
left join candidates
    on candidates.message_key = replies.message_key
    and candidates.rank = 1
