-- Canonical accounting accounts: one row per account of an accounting system's chart of accounts,
-- from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('accounting_accounts') }}
