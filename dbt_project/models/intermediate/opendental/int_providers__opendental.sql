-- Open Dental -> canonical providers: one row per (connection_id, prov_num).
-- IsSecondary is Open Dental's hygienist flag; IsNotPerson marks billing entities; a provider is
-- active unless hidden or ProvStatus Deleted.

select
    connection_id,
    cast(prov_num as varchar) as source_provider_id,
    nullif(trim(f_name), '') as first_name,
    nullif(trim(l_name), '') as last_name,
    nullif(trim(suffix), '') as suffix,
    nullif(trim(abbr), '') as provider_abbr,
    nullif(trim(national_prov_id), '') as npi,
    is_secondary as is_hygienist,
    not is_not_person as is_person,
    not is_hidden and prov_status = 'Active' as is_active,
    {{ canonical_local_to_utc('date_t_stamp') }} as source_updated_at,
    _extracted_at
from {{ ref('stg_opendental__providers') }}
