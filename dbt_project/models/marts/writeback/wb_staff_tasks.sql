-- What staff must enter by hand because no API takes it, one row per task, with what to enter
-- (ids, dates and amounts only: staff open the record in their PMS):
--   enter_payment   an online payment for a PMS whose API takes no payment writes (CareStack),
--                   or whose patient is not in the warehouse
--   apply_reply     a confirm/cancel text the API cannot apply (CareStack) or that names
--                   several appointments of the number's patients
--   book_request    an online appointment request still pending, for a time still ahead: the
--                   request is in the PMS's queue, but CareStack's API to book it is unconfirmed

with payment_settings as (

    select payment_type, writeback_enabled, writeback_amount
    from {{ source('organisation', 'payment_types') }}

),

payments as (

    select
        'enter_payment' as task_kind,
        payments.org_location_id,
        payments.pms_connection_id,
        payments.source_charge_id as source_ref,
        payments.created_at as occurred_at,
        'post ' || case coalesce(settings.writeback_amount, 'net')
            when 'gross' then payments.gross_amount else payments.net_amount end
        || ' (' || coalesce(settings.writeback_amount, 'net') || ', ' || payments.payment_type
        || ') dated ' || cast(cast(payments.created_at as date) as varchar)
        || ' to patient ' || coalesce(payments.source_patient_id, '?')
        || ', processor charge ' || payments.source_charge_id as what_to_enter,
        case payments.writeback_state
            when 'unsupported' then 'the PMS API takes no payment writes'
            else 'the patient is not in the warehouse (check the charge''s patient reference)'
        end as reason
    from {{ ref('wb_payments') }} as payments
    left join payment_settings as settings using (payment_type)
    where payments.writeback_state in ('unsupported', 'unknown_patient')
      and coalesce(settings.writeback_enabled, false)

),

replies as (

    select
        'apply_reply' as task_kind,
        org_location_id,
        pms_connection_id,
        source_message_id as source_ref,
        received_at as occurred_at,
        intent || ' appointment ' || coalesce(source_appointment_id, '?')
        || ' of patient ' || coalesce(source_patient_id, '?') as what_to_enter,
        case writeback_state
            when 'unsupported' then 'the PMS API takes no status writes'
            else 'the number''s patients have ' || n_open_appointments
                || ' appointments in the window: pick the one the reply means'
        end as reason
    from {{ ref('wb_text_replies') }}
    where writeback_state in ('unsupported', 'ambiguous')

),

requests as (

    select
        'book_request' as task_kind,
        locations.org_location_id,
        requests.connection_id as pms_connection_id,
        requests.source_appointment_request_id as source_ref,
        requests.requested_at as occurred_at,
        'book request ' || requests.source_appointment_request_id || ' for '
        || coalesce(strftime(requests.requested_start_at, '%Y-%m-%d %H:%M UTC'), 'any time')
        || case when requests.source_patient_id is null then ' (new patient)'
                else ' for patient ' || requests.source_patient_id end as what_to_enter,
        'the PMS API to book a request is unconfirmed' as reason
    from {{ ref('int_appointment_requests') }} as requests
    left join {{ ref('int_org_locations') }} as locations
        on locations.location_key = requests.location_key
    cross join (select max(requested_at) as as_of from {{ ref('int_appointment_requests') }})
    where requests.vendor_status = 'Pending'
      and requests.appointment_key is null
      and coalesce(requests.requested_start_at, as_of) >= as_of

)

select * from payments
union all
select * from replies
union all
select * from requests
