-- Records the extractor rejected, with the reason: one row per quarantined record per extraction
-- (a record rejected again by a later load appears again, with that load's id).
-- Grain: (connection_id, vendor, entity, load_id, batch_seq, row_seq).

with source as (

    select * from {{ source('landing', 'quarantine') }}

),

renamed as (

    select
        _connection_id as connection_id,
        _vendor as vendor,
        _entity as entity,
        _record_key as record_key,
        _reason as reason,
        _load_id as load_id,
        _batch_seq as batch_seq,
        _row_seq as row_seq,
        _extracted_at as extracted_at,
        _source_timezone as source_timezone,
        _server_time as server_time,
        _record as record
    from source

)

select * from renamed
