-- Canonical accounting deposits: one row per bank deposit recorded in an accounting system, from
-- every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('accounting_deposits') }}
