-- Patients' text replies that confirm or cancel an appointment: one row per inbound text whose
-- words say confirm or cancel (organisation.reply_words), with the appointment it applies to.
-- The practice reminds the number it holds for the patient, so a reply applies to the
-- appointments of the patients registered with the sender's number (a household may share
-- one): the one appointment among them starting within writeback.statuses.horizon_days after
-- the text. No person is linked on the number: the appointment is what the reply answers, and
-- when the number's patients have more than one appointment in that window, staff decide.
-- writeback_state:
--   ready           one appointment, still scheduled (to confirm) or open (to cancel), in a PMS
--                   that takes status writes
--   applied         the appointment already shows the requested status
--   ambiguous       the number's patients have several appointments in the window: staff decide
--   no_appointment  none in the window (or the visit already happened)
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

    select enquiry_key as message_key, match_outcome, phone_e164
    from {{ ref('identity_enquiries') }}
    where enquiry_type = 'text'

),

number_patients as (

    -- Every patient record registered with each number (E.164).
    select distinct unnest(phones) as phone_e164, patient_key
    from {{ ref('identity_patient_traits') }}

),

candidates as (

    -- For a reply: the appointments of the number's patients in the window. Open ones are
    -- those the reply can still act on (a confirmation: still unconfirmed; a cancellation:
    -- scheduled or confirmed); the others are the reply's already applied, or were cancelled.
    select
        replies.message_key,
        appointments.appointment_key,
        appointments.source_system,
        appointments.connection_id,
        appointments.source_appointment_id,
        appointments.source_patient_id,
        appointments.canonical_status,
        appointments.start_at,
        case replies.intent
            when 'confirm' then appointments.canonical_status = 'scheduled'
            else appointments.canonical_status in ('scheduled', 'confirmed')
        end as is_open
    from replies
    cross join settings
    inner join senders using (message_key)
    inner join number_patients using (phone_e164)
    inner join {{ ref('int_appointments') }} as appointments
        on appointments.patient_key = number_patients.patient_key
        and appointments.start_at > replies.received_at
        and appointments.start_at <= replies.received_at + to_days(settings.horizon_days)
        and appointments.canonical_status in ('scheduled', 'confirmed', 'cancelled', 'no_show',
                                              'cancelled_or_no_show', 'unscheduled')

),

ranked as (

    -- The appointment a reply applies to: the open one (the earliest, when several make the
    -- reply ambiguous), else the earliest in the window.
    select
        *,
        count(*) filter (where is_open) over (partition by message_key) as n_open,
        row_number() over (
            partition by message_key
            order by is_open desc, start_at, appointment_key
        ) as rank
    from candidates

)

select
    replies.message_key,
    replies.source_message_id,
    replies.connection_id as phone_connection_id,
    replies.org_location_id,
    replies.received_at,
    replies.intent,
    senders.match_outcome as sender_match_outcome,
    coalesce(candidates.n_open, 0) as n_open_appointments,
    candidates.appointment_key,
    candidates.source_system as pms_vendor,
    candidates.connection_id as pms_connection_id,
    candidates.source_appointment_id,
    candidates.source_patient_id,
    candidates.start_at as appointment_start_at,
    candidates.canonical_status as appointment_status,
    case
        when candidates.appointment_key is null then 'no_appointment'
        when candidates.n_open > 1 then 'ambiguous'
        when candidates.n_open = 0 and replies.intent = 'confirm'
            and candidates.canonical_status = 'confirmed' then 'applied'
        when candidates.n_open = 0 and replies.intent = 'cancel' then 'applied'
        when candidates.n_open = 0 then 'no_appointment'
        when candidates.source_system not in ('opendental', 'nexhealth') then 'unsupported'
        else 'ready'
    end as writeback_state
from replies
left join senders using (message_key)
left join ranked as candidates
    on candidates.message_key = replies.message_key
    and candidates.rank = 1
