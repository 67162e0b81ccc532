-- CareStack -> canonical providers: one row per (connection_id, provider id).
-- ProviderType names Dentist or Hygienist (names unconfirmed); CareStack providers are people.

select
    connection_id,
    cast(id as varchar) as source_provider_id,
    nullif(trim(first_name), '') as first_name,
    nullif(trim(last_name), '') as last_name,
    nullif(trim(suffix), '') as suffix,
    nullif(trim(short_name), '') as provider_abbr,
    nullif(trim(npi), '') as npi,
    provider_type = 'Hygienist' as is_hygienist,
    true as is_person,
    is_active,
    -- reference lists carry no change stamp
    cast(null as timestamptz) as source_updated_at,
    _extracted_at
from {{ ref('stg_carestack__providers') }}
