-- Open Dental patient payments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, pay_num). Latest = the highest SecDateTEdit (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (PayNum -> pay_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('PayNum',        'int'),
    ('PayType',       'int'),
    ('payType',       'text'),
    ('PayDate',       'date'),
    ('PayAmt',        'money'),
    ('CheckNum',      'text'),
    ('BankBranch',    'text'),
    ('PayNote',       'text'),
    ('PatNum',        'int'),
    ('ClinicNum',     'int'),
    ('DateEntry',     'date'),
    ('DepositNum',    'int'),
    ('IsRecurringCC', 'bool'),
    ('SecDateTEdit',  'datetime'),
    ('PaymentSource', 'text'),
    ('ProcessStatus', 'text')
] %}

with source as (

    select
        *,
        -- the raw text of every field above, parsing the JSON once per row
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', 'payments') }}

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
        partition by connection_id, pay_num
        order by {{ od_latest_version_order('sec_date_t_edit') }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
