-- The practice's own appointment-status list (snapshot of GET appointment-status).
-- Grain: one row per (connection_id, id). Latest = the newest extraction (reference lists have no change stamp).

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (Id -> id); parsing rules: macros/carestack/staging.sql. #}
{%- set fields = [
    ('Id',       'int'),
    ('Name',     'text'),
    ('IsActive', 'bool')
] %}

{{ cs_staging('appointment_statuses', fields, key='id') }}
