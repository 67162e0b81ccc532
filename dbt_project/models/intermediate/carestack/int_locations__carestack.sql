-- CareStack -> canonical locations: one row per (connection_id, location id). One connection is
-- one CareStack account, which may hold several locations, each with its own IANA zone.

select
    connection_id,
    cast(id as varchar) as source_location_id,
    nullif(trim(name), '') as location_name,
    -- CareStack locations have no short name
    cast(null as varchar) as location_abbr,
    nullif(trim(address_line1), '') as address_line1,
    cast(null as varchar) as address_line2,
    nullif(trim(city), '') as city,
    nullif(trim(state), '') as state,
    nullif(trim(zip), '') as postal_code,
    nullif(trim(phone), '') as phone,
    -- a location without a zone falls back to the connection's configured zone
    coalesce(nullif(trim(time_zone), ''), source_timezone) as timezone,
    is_active,
    -- reference lists carry no change stamp
    cast(null as timestamptz) as source_updated_at,
    _extracted_at
from {{ ref('stg_carestack__locations') }}
