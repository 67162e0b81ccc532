-- One row per object and discrepancy code: every exception of the payout, deposit, charge and
-- PMS payment reconciliations, with the amounts it concerns and a readable detail (ids and
-- amounts only: no patient data). Codes and exact conditions: docs/reconciliation.md.
--
-- expected_amount / actual_amount: what one side should hold and what it holds (0 when it holds
-- nothing); difference_amount = actual - expected. NULL where a code is not about an amount.

with codes as (

    select * from {{ ref('dim_reconciliation_codes') }}

),

settings as (

    select * from {{ ref('recon_settings') }}

),

payout_codes as (

    select
        payouts.*,
        settings.fee_min_pct,
        settings.fee_max_pct,
        unnest(payouts.codes) as code
    from {{ ref('fct_payout_reconciliation') }} as payouts
    cross join settings

),

payout_exceptions as (

    select
        code,
        'payout' as object_kind,
        payout_key as object_key,
        source_payout_id as object_id,
        source_system,
        connection_id,
        source_payout_id,
        cast(null as varchar) as org_location_id,
        cast(null as varchar) as location_ref,
        arrival_date as object_date,
        payout_amount as object_amount,
        case code
            when 'missing_deposit' then payout_amount
            when 'duplicate_posting' then payout_amount
            when 'amount_mismatch_net' then payout_amount
            when 'amount_mismatch_gross' then expected_books_gross_amount
            when 'amount_mismatch_fee' then expected_books_fee_amount
            when 'fee_anomaly' then round(
                charges_amount
                * (case when effective_fee_pct > fee_max_pct then fee_max_pct else fee_min_pct end)
                / 100, 2)
        end as expected_amount,
        case code
            when 'missing_deposit' then 0
            when 'duplicate_posting' then deposits_total_amount
            when 'amount_mismatch_net' then deposit_amount
            when 'amount_mismatch_gross' then deposit_gross_amount
            when 'amount_mismatch_fee' then deposit_fee_amount
            when 'fee_anomaly' then charge_fees_amount
        end as actual_amount,
        case code
            when 'payout_failed_or_reversed' then format(
                'Payout {} of {:.2f} did not reach the bank (status {}){}.', source_payout_id,
                payout_amount, payout_status,
                case
                    when n_deposits > 0
                        then '; deposit(s) ' || array_to_string(deposit_ids, ', ') || ' book it'
                    else ''
                end)
            when 'missing_deposit' then format(
                'Paid payout {} of {:.2f} arrived {}; no books deposit names it {} days later.',
                source_payout_id, payout_amount, arrival_date, date_diff('day', arrival_date, as_of_date))
            when 'duplicate_posting' then format(
                'Payout {} of {:.2f} is booked by {} deposits ({}) totalling {:.2f}.',
                source_payout_id, payout_amount, n_deposits, array_to_string(deposit_ids, ', '),
                deposits_total_amount)
            when 'amount_mismatch_net' then format(
                'Deposit {} totals {:.2f}; payout {} is {:.2f} (difference {:.2f}).',
                source_accounting_deposit_id, deposit_amount, source_payout_id, payout_amount,
                net_difference)
            when 'amount_mismatch_gross' then format(
                'Deposit {} books gross {:.2f}; the processor''s is {:.2f} (difference {:.2f}).',
                source_accounting_deposit_id, deposit_gross_amount, expected_books_gross_amount,
                gross_difference)
            when 'amount_mismatch_fee' then format(
                'Deposit {} books fees of {:.2f}; the processor charged {:.2f} (difference {:.2f}).',
                source_accounting_deposit_id, deposit_fee_amount, expected_books_fee_amount,
                fee_difference)
            when 'timing_difference' then format(
                'Deposit {} is dated {}, {} days from the payout''s arrival on {}.',
                source_accounting_deposit_id, deposit_date, deposit_days_from_arrival, arrival_date)
            when 'fee_anomaly' then format(
                'Card fees are {:.2f}% of the payout''s charges ({:.2f} on {:.2f}); expected {}% to {}%.',
                effective_fee_pct, charge_fees_amount, charges_amount, fee_min_pct, fee_max_pct)
            when 'refund_or_chargeback_netted' then format(
                'Payout {} nets {} refund(s) ({:.2f}) and {} dispute movement(s) ({:.2f}).',
                source_payout_id, n_refunds, refunds_amount, n_disputes, disputes_amount)
        end as detail
    from payout_codes

),

deposit_exceptions as (

    select
        'orphan_deposit' as code,
        'deposit' as object_kind,
        accounting_deposit_key as object_key,
        source_accounting_deposit_id as object_id,
        source_system,
        connection_id,
        processor_payout_ref as source_payout_id,
        cast(null as varchar) as org_location_id,
        cast(null as varchar) as location_ref,
        deposit_date as object_date,
        total_amount as object_amount,
        cast(null as decimal(18, 2)) as expected_amount,
        cast(null as decimal(18, 2)) as actual_amount,
        format(
            'Deposit {} of {:.2f} dated {} names payout {}, which the processor does not have.',
            source_accounting_deposit_id, total_amount, deposit_date, processor_payout_ref
        ) as detail
    from {{ ref('fct_deposit_reconciliation') }}
    where primary_code = 'orphan_deposit'

),

charge_codes as (

    select
        charges.*,
        unnest(charges.codes) as code
    from {{ ref('fct_charge_reconciliation') }} as charges

),

charge_exceptions as (

    select
        code,
        'charge' as object_kind,
        charge_key as object_key,
        source_charge_id as object_id,
        source_system,
        connection_id,
        source_payout_id,
        org_location_id,
        location_ref,
        charge_date as object_date,
        gross_amount as object_amount,
        expected_pms_amount as expected_amount,
        case code
            when 'charge_not_posted_to_pms' then 0
            when 'duplicate_pms_posting' then pms_amount * (1 + n_duplicate_pms_payments)
            when 'pms_amount_mismatch' then pms_amount
        end as actual_amount,
        case code
            when 'charge_not_posted_to_pms' then format(
                'Charge {} of {:.2f} ({}) {}.', source_charge_id, gross_amount,
                coalesce(payment_type, 'no payment type'),
                case
                    when pms_payment_ref is null then 'names no PMS payment'
                    else 'names PMS payment ' || pms_payment_ref || ', which the ledger does not have'
                end)
            when 'duplicate_pms_posting' then format(
                'Charge {} is posted as PMS payment {} and again as {}.', source_charge_id,
                pms_payment_ref, array_to_string(duplicate_pms_payment_ids, ', '))
            when 'pms_amount_mismatch' then format(
                'Charge {} should be in the PMS at {:.2f} ({}) but payment {} records {:.2f}.',
                source_charge_id, expected_pms_amount, pms_amount_basis, pms_payment_ref,
                pms_amount)
        end as detail
    from charge_codes

),

pms_exceptions as (

    select
        code,
        'pms_payment' as object_kind,
        pms_payment_key as object_key,
        pms_payment_ref as object_id,
        source_system,
        connection_id,
        cast(null as varchar) as source_payout_id,
        cast(null as varchar) as org_location_id,
        cast(null as varchar) as location_ref,
        payment_date as object_date,
        amount as object_amount,
        amount as expected_amount,
        0 as actual_amount,
        format(
            'PMS card payment {} ({}) of {:.2f} on {} has no processor charge.',
            pms_payment_ref, payment_type, amount, payment_date
        ) as detail
    from {{ ref('fct_pms_payment_reconciliation') }}
    where code is not null

),

all_exceptions as (

    select * from payout_exceptions
    union all
    select * from deposit_exceptions
    union all
    select * from charge_exceptions
    union all
    select * from pms_exceptions

)

select
    md5(all_exceptions.object_kind || '-' || all_exceptions.object_key || '-' || all_exceptions.code)
        as exception_key,
    all_exceptions.code,
    codes.severity,
    all_exceptions.object_kind,
    all_exceptions.object_key,
    all_exceptions.object_id,
    all_exceptions.source_system,
    all_exceptions.connection_id,
    all_exceptions.source_payout_id,
    all_exceptions.org_location_id,
    all_exceptions.location_ref,
    all_exceptions.object_date,
    all_exceptions.object_amount,
    cast(all_exceptions.expected_amount as decimal(18, 2)) as expected_amount,
    cast(all_exceptions.actual_amount as decimal(18, 2)) as actual_amount,
    cast(all_exceptions.actual_amount - all_exceptions.expected_amount as decimal(18, 2))
        as difference_amount,
    all_exceptions.detail,
    settings.as_of_date
from all_exceptions
cross join settings
left join codes
    on codes.code = all_exceptions.code
