-- The reconciliation codes: which object each concerns, how serious it is and the order a
-- payout's codes are listed in (its primary code is the first). Exact conditions:
-- docs/reconciliation.md.

select
    code,
    object_kind,
    severity,
    priority,
    description
from (
    values
        ('payout_failed_or_reversed', 'payout', 'error', 1,
            'The bank returned the payout (status failed or canceled).'),
        ('missing_deposit', 'payout', 'error', 2,
            'A paid payout with no books deposit naming it, deposit_grace_days after its arrival.'),
        ('duplicate_posting', 'payout', 'error', 3,
            'More than one books deposit names the payout.'),
        ('amount_mismatch_net', 'payout', 'error', 4,
            'The deposit total differs from the payout amount by more than amount_tolerance.'),
        ('amount_mismatch_gross', 'payout', 'error', 5,
            'The deposit''s gross (its lines other than fees) differs from the processor''s.'),
        ('amount_mismatch_fee', 'payout', 'error', 6,
            'The deposit''s fee lines differ from the processor''s fees.'),
        ('timing_difference', 'payout', 'warning', 7,
            'The deposit is dated more than timing_tolerance_days from the payout''s arrival.'),
        ('fee_anomaly', 'payout', 'warning', 8,
            'The payout''s card fees are outside fee_min_pct..fee_max_pct of its charges.'),
        ('refund_or_chargeback_netted', 'payout', 'info', 9,
            'Refunds, disputes or dispute reversals are netted inside the payout.'),
        ('orphan_deposit', 'deposit', 'error', 10,
            'A books deposit names a processor payout the processor does not have.'),
        ('charge_not_posted_to_pms', 'charge', 'error', 11,
            'A charge with no PMS payment behind it.'),
        ('duplicate_pms_posting', 'charge', 'error', 12,
            'The PMS ledger holds the charge twice: an uncharged card payment like its own.'),
        ('pms_amount_mismatch', 'charge', 'error', 13,
            'The PMS payment differs from the charge''s gross or net (per payment type).'),
        ('pms_payment_without_charge', 'pms_payment', 'error', 14,
            'A PMS card payment no processor charge names.')
) as codes (code, object_kind, severity, priority, description)
