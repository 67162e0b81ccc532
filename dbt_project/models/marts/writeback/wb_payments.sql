-- Processor charges a patient paid online (not keyed in at the PMS: the charge names no PMS
-- payment) that belong on that patient's PMS ledger: one row per charge, with the PMS record
-- to post to. writeback/plan.py decides, per payment type setting, whether and when to write.
--
-- A charge names its patient as `<office>:<PMS patient id>` (metadata patient_ref), where the
-- office is a connection id (Open Dental) or an organisation location (CareStack, NexHealth), by
-- its id or processor_location_ref.
-- writeback_state:
--   ready           the patient is in the warehouse and the PMS takes payment writes
--   written         a PMS payment already carries this charge's marker
--   unknown_patient the PMS patient is not (yet) in the warehouse
--   refunded        refunded in full before it was posted: nothing to post
--   unsupported     the PMS's API takes no payment writes (CareStack): staff enter it

with charges as (

    select * from ({{ recon_charges() }})
    where patient_ref is not null
      and (pms_payment_ref is null or is_written_back)

),

refunds as (

    select source_charge_id, -sum(gross_amount) as refunded_amount
    from {{ ref('int_processor_transactions') }}
    where transaction_type = 'refund'
    group by source_charge_id

),

org_locations as (

    select location_id, connection_id, vendor, clinic_num, pms_location_id, processor_location_ref
    from {{ source('organisation', 'locations') }}

),

connections as (

    select distinct connection_id, vendor from org_locations

),

referenced as (

    select
        charges.*,
        regexp_extract(charges.patient_ref, '^(.*):', 1) as patient_office,
        regexp_extract(charges.patient_ref, ':([^:]*)$', 1) as source_patient_id
    from charges

),

targeted as (

    select
        referenced.*,
        coalesce(connections.connection_id, by_location.connection_id) as pms_connection_id,
        coalesce(connections.vendor, by_location.vendor) as pms_vendor,
        -- Where on the ledger: Open Dental's ClinicNum, the PMS's location id otherwise
        case coalesce(connections.vendor, by_location.vendor)
            when 'opendental' then cast(charge_location.clinic_num as varchar)
            else coalesce(by_location.pms_location_id, charge_location.pms_location_id)
        end as pms_location_ref,
        coalesce(referenced.org_location_id, by_location.location_id) as writeback_location_id
    from referenced
    left join connections
        on connections.connection_id = referenced.patient_office
    left join org_locations as by_location
        on referenced.patient_office in (by_location.location_id, by_location.processor_location_ref)
    left join org_locations as charge_location
        on charge_location.location_id = referenced.org_location_id

),

patients as (

    select connection_id, source_patient_id, patient_key
    from {{ ref('int_patients') }}

)

select
    targeted.processor_transaction_key as charge_key,
    targeted.source_charge_id,
    targeted.connection_id as processor_connection_id,
    targeted.writeback_location_id as org_location_id,
    targeted.payment_type,
    targeted.created_at,
    targeted.gross_amount,
    targeted.fee_amount,
    targeted.net_amount,
    coalesce(refunds.refunded_amount, 0) as refunded_amount,
    targeted.pms_connection_id,
    targeted.pms_vendor,
    targeted.pms_location_ref,
    targeted.source_patient_id,
    patients.patient_key,
    case
        when targeted.is_written_back then 'written'
        when coalesce(refunds.refunded_amount, 0) >= targeted.gross_amount then 'refunded'
        when targeted.pms_vendor not in ('opendental', 'nexhealth') then 'unsupported'
        when patients.patient_key is null then 'unknown_patient'
        else 'ready'
    end as writeback_state
from targeted
left join refunds
    on refunds.source_charge_id = targeted.source_charge_id
left join patients
    on patients.connection_id = targeted.pms_connection_id
    and patients.source_patient_id = targeted.source_patient_id
