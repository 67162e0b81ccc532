-- Canonical pms adjustments: one row per ledger adjustment recorded in a practice-management
-- system, from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('pms_adjustments') }}
