-- The IANA time zone of every organisation location, for the call marts' local hours and days.
-- A location's clock comes from its vendor location once the config maps it (int_org_locations).
-- A CareStack location the config does not map yet (pms_location_id unset) has no org location
-- there; its clock is taken from the CareStack location the sync matched or proposed for it by
-- name (only the clock: calls are never placed by a proposal). Nothing known: UTC.

{{ config(materialized='ephemeral') }}

with mapped as (
    select org_location_id, min(timezone) as timezone
    from {{ ref('int_org_locations') }}
    where org_location_id is not null
    group by org_location_id
),

matched_by_name as (
    select
        coalesce(matches.location_id, matches.proposed_location_id) as org_location_id,
        min(vendor_locations.timezone) as timezone
    from {{ ref('stg_carestack__location_matches') }} as matches
    inner join {{ ref('int_locations') }} as vendor_locations
        on vendor_locations.source_system = 'carestack'
        and vendor_locations.connection_id = matches.connection_id
        and vendor_locations.source_location_id = cast(matches.carestack_location_id as varchar)
    where coalesce(matches.location_id, matches.proposed_location_id) is not null
    group by 1
)

select
    org.location_id as org_location_id,
    coalesce(mapped.timezone, matched_by_name.timezone, 'UTC') as timezone
from {{ source('organisation', 'locations') }} as org
left join mapped on mapped.org_location_id = org.location_id
left join matched_by_name on matched_by_name.org_location_id = org.location_id
