-- Canonical providers: one row per vendor provider (dentist, hygienist, non-person billing
-- entity), from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('providers') }}
