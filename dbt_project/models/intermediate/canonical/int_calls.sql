-- Canonical calls: one row per call (the caller's session; child legs collapsed), from every
-- vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('calls') }}
