-- Canonical appointments: one row per vendor appointment (every status, including notes and
-- planned treatment), from every vendor listed in canonical_adapters().
-- canonical_status comes from the crosswalk seed appointment_status_crosswalk (data, not code).
-- A vendor status missing from it is kept as 'unmapped', never dropped or guessed, and the
-- test appointment_status_missing_from_crosswalk fails naming the source system and the value.

with appointments as (

    {{ canonical_union('appointments') }}

),

crosswalk as (

    select source_system, vendor_status, canonical_status
    from {{ ref('appointment_status_crosswalk') }}

)

select
    appointments.* replace (
        coalesce(crosswalk.canonical_status, 'unmapped') as canonical_status
    )
from appointments
left join crosswalk
    on appointments.source_system = crosswalk.source_system
    and appointments.vendor_status = crosswalk.vendor_status
