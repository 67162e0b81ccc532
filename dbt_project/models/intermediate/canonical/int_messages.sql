-- Canonical messages: one row per text message, from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('messages') }}
