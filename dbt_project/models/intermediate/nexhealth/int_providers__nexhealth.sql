-- NexHealth -> canonical providers: one row per (connection_id, provider id).
-- NexHealth has no hygienist flag: specialty_code naming a hygienist (its text, or the NUCC
-- taxonomy code 124Q00000X) is read as one; the code list is not documented (unconfirmed).
-- No suffix or short name either (display_name is free text, not parsed).

select
    connection_id,
    cast(id as varchar) as source_provider_id,
    nullif(trim(first_name), '') as first_name,
    nullif(trim(last_name), '') as last_name,
    cast(null as varchar) as suffix,
    cast(null as varchar) as provider_abbr,
    nullif(trim(npi), '') as npi,
    case
        when nullif(trim(specialty_code), '') is null then null
        else specialty_code ilike '%hygien%' or specialty_code = '124Q00000X'
    end as is_hygienist,
    -- NexHealth providers are the PMS's people (no billing-entity flag)
    true as is_person,
    not coalesce(inactive, false) as is_active,
    updated_at as source_updated_at,
    _extracted_at
from {{ ref('stg_nexhealth__providers') }}
