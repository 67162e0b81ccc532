-- Every write Chairside intended to make to a vendor system and how it went: one row per
-- outbox row (as of the outbox's last export), with the failures ops must look at.

select
    key as writeback_key,
    kind,
    target as connection_id,
    source_ref,
    state,
    attempts,
    remote_id,
    last_error,
    cast(planned_at as timestamptz) as planned_at,
    cast(due_at as timestamptz) as due_at,
    cast(updated_at as timestamptz) as updated_at,
    state = 'failed' as needs_attention
from {{ source('writeback', 'outbox') }}
