-- Canonical processor transactions: one row per card-processor balance transaction (charge,
-- refund, dispute, fee, ...), from every vendor listed in canonical_adapters().
-- Columns: macros/canonical/columns.sql and docs/canonical-model.md.

{{ canonical_union('processor_transactions') }}
