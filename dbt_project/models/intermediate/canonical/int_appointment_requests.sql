-- Canonical appointment requests: one row per online booking / appointment request, from every
-- vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('appointment_requests') }}
