-- NexHealth -> canonical locations: one row per (connection_id, location id). One connection is
-- one NexHealth institution; each location is one office synced from its PMS.

select
    connection_id,
    cast(id as varchar) as source_location_id,
    nullif(trim(name), '') as location_name,
    -- NexHealth locations have no short name
    cast(null as varchar) as location_abbr,
    nullif(trim(street_address), '') as address_line1,
    nullif(trim(street_address_2), '') as address_line2,
    nullif(trim(city), '') as city,
    nullif(trim(state), '') as state,
    nullif(trim(zip_code), '') as postal_code,
    nullif(trim(phone_number), '') as phone,
    -- a location without a zone falls back to the connection's configured zone
    coalesce(nullif(trim(tz), ''), source_timezone) as timezone,
    not coalesce(inactive, false) as is_active,
    updated_at as source_updated_at,
    _extracted_at
from {{ ref('stg_nexhealth__locations') }}
