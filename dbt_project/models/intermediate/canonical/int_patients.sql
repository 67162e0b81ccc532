-- Canonical patients: one row per vendor patient record (the same person in two offices is two
-- rows; matching is a later layer), from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('patients') }}
