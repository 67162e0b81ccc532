-- CareStack locations matched to the organisation's locations, as of each connection's latest run.
-- Grain: one row per (connection_id, match_key). Only each connection's latest run counts (the matching is redone whole every run).

{#- The API fields in API order with their wire type. Each becomes a column named by the
    mechanical snake_case rule (matchKey -> match_key); parsing rules: macros/carestack/staging.sql. #}
{%- set fields = [
    ('matchKey',              'text'),
    ('status',                'text'),
    ('carestackLocationId',   'int'),
    ('carestackLocationName', 'text'),
    ('locationId',            'text'),
    ('locationName',          'text'),
    ('proposedLocationId',    'text'),
    ('proposedLocationName',  'text'),
    ('score',                 'decimal')
] %}

{{ cs_staging('location_matches', fields, key='match_key', latest_load_only=true) }}
