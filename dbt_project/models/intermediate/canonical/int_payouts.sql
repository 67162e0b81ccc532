-- Canonical payouts: one row per processor payout to the bank, from every vendor listed in
-- canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('payouts') }}
