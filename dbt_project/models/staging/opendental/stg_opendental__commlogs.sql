-- Open Dental communication log entries: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, commlog_num). Latest = the highest DateTStamp (change stamp), then the newest extraction.

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (CommlogNum -> commlog_num); parsing rules: macros/opendental/parsing.sql. #}
{%- set fields = [
    ('CommlogNum',     'int'),
    ('PatNum',         'int'),
    ('CommDateTime',   'datetime'),
    ('CommType',       'int'),
    ('commType',       'text'),
    ('Note',           'text'),
    ('Mode_',          'text'),
    ('SentOrReceived', 'text'),
    ('UserNum',        'int'),
    ('DateTStamp',     'datetime'),
    ('CommSource',     'text'),
    ('DateTEntry',     'datetime')
] %}

{{ od_staging('commlogs', fields, key='commlog_num', change_stamp='date_t_stamp') }}
