-- NexHealth appointments: the latest version of every record, parsed from the raw API JSON.
-- Grain: one row per (connection_id, id). Latest = the highest updated_at, then the newest extraction.

{#- The API fields in API order with their wire type; columns keep the API names, nested object
    fields become <object>_<field>. Rules: macros/nexhealth/parsing.sql. #}
{%- set fields = [
    ('id',                          'int'),
    ('patient_id',                  'int'),
    ('provider_id',                 'int'),
    ('provider_name',               'text'),
    ('start_time',                  'timestamp'),
    ('end_time',                    'timestamp'),
    ('timezone',                    'text'),
    ('timezone_offset',             'text'),
    ('confirmed',                   'bool'),
    ('confirmed_at',                'timestamp'),
    ('patient_confirmed',           'bool'),
    ('patient_confirmed_at',        'timestamp'),
    ('cancelled',                   'bool'),
    ('cancelled_at',                'timestamp'),
    ('patient_missed',              'bool'),
    ('checkin_at',                  'timestamp'),
    ('checked_out',                 'bool'),
    ('checked_out_at',              'timestamp'),
    ('unavailable',                 'bool'),
    ('sooner_if_possible',          'bool'),
    ('note',                        'text'),
    ('is_new_clients_patient',      'bool'),
    ('appointment_type_id',         'int'),
    ('operatory_id',                'int'),
    ('location_id',                 'int'),
    ('institution_id',              'int'),
    ('foreign_id_type',             'text'),
    ('foreign_id',                  'text'),
    ('referrer',                    'text'),
    ('created_by_user_id',          'int'),
    ('is_guardian',                 'bool'),
    ('misc.is_booked_on_nexhealth', 'bool'),
    ('created_at',                  'timestamp'),
    ('updated_at',                  'timestamp'),
    ('last_sync_time',              'timestamp')
] %}

{{ nx_staging('appointments', fields, key='id', change_stamp='updated_at') }}
