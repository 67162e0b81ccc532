-- Per processor charge: was it posted to the PMS ledger, for the amount the group's settings
-- expect (gross, or net of fees, per payment type), and once?
--
-- A charge names its PMS payment as `<connection>:<payment id>` (pms_payment_ref). It can be
-- checked when that connection's ledger is in the warehouse (pms_ledger_synced); a charge naming
-- a ledger the warehouse does not hold (a PMS whose payments are not extracted) is
-- 'unverified', not an exception. Codes and exact conditions: docs/reconciliation.md.

with settings as (

    select * from {{ ref('recon_settings') }}

),

transactions as (

    select * from {{ ref('int_processor_transactions') }}

),

charges as (

    {{ recon_charges() }}

),

afterwards as (

    -- What happened to the charge later: refunds, disputes and dispute reversals.
    select
        source_system,
        connection_id,
        source_charge_id,
        coalesce(-sum(gross_amount) filter (where transaction_type = 'refund'), 0)
            as refunded_amount,
        count(*) filter (where transaction_type = 'dispute') > 0 as is_disputed
    from transactions
    where transaction_type in ('refund', 'dispute', 'dispute_reversal')
    group by source_system, connection_id, source_charge_id

),

amount_basis as (

    select payment_type, pms_amount, writeback_amount
    from {{ source('organisation', 'payment_types') }}

),

pms_payments as (

    select * from {{ ref('fct_pms_payment_reconciliation') }}

),

ledgers as (

    select distinct connection_id from {{ ref('int_pms_payments') }}

),

duplicates as (

    select
        duplicate_of_charge_key as charge_key,
        count(*) as n_duplicates,
        list(source_pms_payment_id order by payment_date, source_pms_payment_id)
            as duplicate_pms_payment_ids
    from pms_payments
    where reconciliation_state = 'duplicate'
    group by duplicate_of_charge_key

),

checked as (

    select
        charges.processor_transaction_key as charge_key,
        charges.source_system,
        charges.connection_id,
        charges.source_charge_id,
        charges.source_processor_transaction_id,
        charges.payout_key,
        charges.source_payout_id,
        charges.org_location_id,
        charges.location_ref,
        charges.payment_type,
        charges.created_at,
        cast(timezone('UTC', charges.created_at) as date) as charge_date,
        charges.currency,
        charges.gross_amount,
        charges.fee_amount,
        charges.net_amount,
        coalesce(afterwards.refunded_amount, 0) as refunded_amount,
        coalesce(afterwards.is_disputed, false) as is_disputed,
        charges.pms_payment_ref,
        regexp_extract(charges.pms_payment_ref, '^(.*):', 1) as pms_connection_id,
        charges.is_written_back,
        {%- set basis -%}
        case
            when charges.is_written_back then coalesce(amount_basis.writeback_amount, 'net')
            else coalesce(amount_basis.pms_amount, 'gross')
        end
        {%- endset %}
        {{ basis }} as pms_amount_basis,
        case {{ basis }}
            when 'net' then charges.net_amount
            else charges.gross_amount
        end as expected_pms_amount,
        pms_payments.pms_payment_key,
        pms_payments.source_pms_payment_id,
        pms_payments.payment_date as pms_payment_date,
        pms_payments.amount as pms_amount,
        coalesce(duplicates.n_duplicates, 0) as n_duplicate_pms_payments,
        duplicates.duplicate_pms_payment_ids,
        ledgers.connection_id is not null as pms_ledger_synced,
        settings.amount_tolerance
    from charges
    cross join settings
    left join afterwards
        on afterwards.source_system = charges.source_system
        and afterwards.connection_id = charges.connection_id
        and afterwards.source_charge_id = charges.source_charge_id
    left join amount_basis
        on amount_basis.payment_type = charges.payment_type
    left join pms_payments
        on pms_payments.pms_payment_ref = charges.pms_payment_ref
    left join ledgers
        on ledgers.connection_id = regexp_extract(charges.pms_payment_ref, '^(.*):', 1)
    left join duplicates
        on duplicates.charge_key = charges.processor_transaction_key

),

coded as (

    select
        *,
        list_filter([
            case
                when pms_payment_ref is null or (pms_ledger_synced and pms_payment_key is null)
                    then 'charge_not_posted_to_pms'
            end,
            case when n_duplicate_pms_payments > 0 then 'duplicate_pms_posting' end,
            case
                when pms_payment_key is not null
                    and abs(pms_amount - expected_pms_amount) > amount_tolerance
                    then 'pms_amount_mismatch'
            end
        ], lambda code: code is not null) as codes
    from checked

)

select
    charge_key,
    source_system,
    connection_id,
    source_charge_id,
    source_processor_transaction_id,
    payout_key,
    source_payout_id,
    org_location_id,
    location_ref,
    payment_type,
    created_at,
    charge_date,
    currency,
    gross_amount,
    fee_amount,
    net_amount,
    refunded_amount,
    is_disputed,
    pms_payment_ref,
    pms_connection_id,
    pms_ledger_synced,
    is_written_back,
    pms_amount_basis,
    expected_pms_amount,
    pms_payment_key,
    source_pms_payment_id,
    pms_payment_date,
    pms_amount,
    pms_amount - expected_pms_amount as pms_amount_difference,
    n_duplicate_pms_payments,
    duplicate_pms_payment_ids,
    case
        when pms_payment_key is not null then true
        when pms_payment_ref is null or pms_ledger_synced then false
    end as is_posted_to_pms,
    case
        when pms_payment_key is not null then n_duplicate_pms_payments = 0
        when pms_payment_ref is null or pms_ledger_synced then false
    end as is_posted_once,
    codes,
    codes[1] as primary_code,
    case
        when len(codes) > 0 then 'exception'
        when not pms_ledger_synced then 'unverified'
        else 'ok'
    end as status
from coded
