-- Canonical locations: one row per vendor location (an Open Dental clinic, or the office itself
-- when it has no clinics), from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('locations') }}
