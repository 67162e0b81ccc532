-- Open Dental -> canonical locations: one location per (connection_id, clinic_num).
--   * every clinic GET /clinics lists (visible clinics);
--   * ClinicNum 0 for an office that does not use clinics (GET /clinics returned nothing):
--     the office itself;
--   * any other ClinicNum a patient, appointment, payment or adjustment points at: a hidden
--     clinic (the API lists only visible ones) or "no clinic" (0) in an office with clinics,
--     so that every location_key a record carries exists. Their names are unknown (NULL).
-- Open Dental's API gives no office name: location_name is NULL for ClinicNum 0.

with clinics as (

    select * from {{ ref('stg_opendental__clinics') }}

),

connections as (

    -- Every connection that has landed records, with its office time zone.
    select connection_id, max(source_timezone) as source_timezone
    from (
        select connection_id, source_timezone from {{ ref('stg_opendental__providers') }}
        union all
        select connection_id, source_timezone from {{ ref('stg_opendental__patients') }}
    )
    group by connection_id

),

referenced as (

    select distinct connection_id, clinic_num
    from (
        select connection_id, clinic_num from {{ ref('stg_opendental__patients') }}
        union all
        select connection_id, clinic_num from {{ ref('stg_opendental__appointments') }}
        union all
        select connection_id, clinic_num from {{ ref('stg_opendental__payments') }}
        union all
        select connection_id, clinic_num from {{ ref('stg_opendental__adjustments') }}
    )
    where clinic_num is not null

),

office_level as (

    -- ClinicNum 0 for connections without clinics, and any referenced clinic not listed.
    select connection_id, 0 as clinic_num
    from connections
    where connection_id not in (select connection_id from clinics)
    union
    (
        select connection_id, clinic_num from referenced
        except
        select connection_id, clinic_num from clinics
    )

)

select
    clinics.connection_id,
    cast(clinics.clinic_num as varchar) as source_location_id,
    nullif(trim(clinics.description), '') as location_name,
    nullif(trim(clinics.abbr), '') as location_abbr,
    nullif(trim(clinics.address), '') as address_line1,
    nullif(trim(clinics.address2), '') as address_line2,
    nullif(trim(clinics.city), '') as city,
    nullif(trim(clinics.state), '') as state,
    nullif(trim(clinics.zip), '') as postal_code,
    nullif(trim(clinics.phone), '') as phone,
    clinics.source_timezone as timezone,
    not clinics.is_hidden as is_active,
    -- clinics carry no change stamp
    cast(null as timestamptz) as source_updated_at,
    clinics._extracted_at
from clinics

union all

select
    office_level.connection_id,
    cast(office_level.clinic_num as varchar) as source_location_id,
    null as location_name,
    null as location_abbr,
    null as address_line1,
    null as address_line2,
    null as city,
    null as state,
    null as postal_code,
    null as phone,
    connections.source_timezone as timezone,
    -- the office itself is active; a referenced clinic the API does not list is hidden
    office_level.clinic_num = 0 as is_active,
    cast(null as timestamptz) as source_updated_at,
    cast(null as timestamptz) as _extracted_at
from office_level
left join connections on office_level.connection_id = connections.connection_id
