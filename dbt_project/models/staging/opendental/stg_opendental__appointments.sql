-- Open Dental appointments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, apt_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (AptNum -> apt_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('AptNum',             'int'),
    ('PatNum',             'int'),
    ('AptStatus',          'text'),
    ('Pattern',            'text'),
    ('Confirmed',          'int'),
    ('confirmed',          'text'),
    ('Op',                 'int'),
    ('Note',               'text'),
    ('ProvNum',            'int'),
    ('provAbbr',           'text'),
    ('ProvHyg',            'int'),
    ('AptDateTime',        'datetime'),
    ('NextAptNum',         'int'),
    ('UnschedStatus',      'int'),
    ('IsNewPatient',       'bool'),
    ('ProcDescript',       'text'),
    ('ClinicNum',          'int'),
    ('IsHygiene',          'bool'),
    ('DateTStamp',         'datetime'),
    ('DateTimeArrived',    'datetime'),
    ('DateTimeSeated',     'datetime'),
    ('DateTimeDismissed',  'datetime'),
    ('AppointmentTypeNum', 'int'),
    ('SecDateTEntry',      'datetime'),
    ('Priority',           'text')
] %}

with source as (

    select
        *,
        -- the raw text of every field above, parsing the JSON once per row
        {{ od_extract_fields(fields) }} as _raw
    from {{ source('opendental', 'appointments') }}

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
        partition by connection_id, apt_num
        order by {{ od_latest_version_order('date_t_stamp') }}
    ) = 1

)

select * exclude (_batch_seq, _row_seq)
from deduplicated
