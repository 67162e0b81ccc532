-- Every vendor location with the organisation location it is (config `locations`): an Open
-- Dental location by its connection and ClinicNum, a CareStack or NexHealth location by the
-- confirmed pms_location_id. A vendor location the config does not name (yet) has a NULL
-- org_location_id: marts show it as unassigned rather than guessing.

with vendor_locations as (
    select location_key, source_system, connection_id, source_location_id, timezone
    from {{ ref('int_locations') }}
),

org as (
    select location_id, location_name, connection_id, vendor, clinic_num, pms_location_id
    from {{ source('organisation', 'locations') }}
)

select
    vendor_locations.location_key,
    vendor_locations.source_system,
    vendor_locations.connection_id,
    vendor_locations.source_location_id,
    org.location_id as org_location_id,
    org.location_name as org_location_name,
    vendor_locations.timezone
from vendor_locations
left join org
    on org.connection_id = vendor_locations.connection_id
    and (
        (org.vendor = 'opendental' and cast(org.clinic_num as varchar) = vendor_locations.source_location_id)
        or (org.vendor <> 'opendental' and org.pms_location_id = vendor_locations.source_location_id)
    )
