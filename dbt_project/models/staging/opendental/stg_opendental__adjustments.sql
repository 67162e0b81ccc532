-- Open Dental ledger adjustments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, adj_num). Latest = the highest SecDateTEdit (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (AdjNum -> adj_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('AdjNum',          'int'),
    ('AdjDate',         'date'),
    ('AdjAmt',          'money'),
    ('PatNum',          'int'),
    ('AdjType',         'int'),
    ('adjType',         'text'),
    ('ProvNum',         'int'),
    ('AdjNote',         'text'),
    ('ProcDate',        'date'),
    ('ProcNum',         'int'),
    ('DateEntry',       'date'),
    ('ClinicNum',       'int'),
    ('SecUserNumEntry', 'int'),
    ('SecDateTEdit',    'datetime')
] %}

with source as (

    select
        *,
        -- the raw text of every field above, parsing the JSON once per row
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', 'adjustments') }}

),

parsed as (

    select
        _connection_id as connection_id,
        {{- od_parse_fields(fields, '_raw') }},
        _source_timezone as source_timezone,
        _load_id,
        _extracted_at,
        _batch_seq,
        _row_seq
    from source

),

deduplicated as (

    select *
    from parsed
    qualify row_number() over (
        partition by connection_id, adj_num
        order by {{ od_latest_version_order('sec_date_t_edit') }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
