-- Stripe -> canonical processor transactions: one row per balance transaction (txn_...), the
-- balance-level record of every money movement: a charge (gross, fee, net), a refund, a dispute
-- and its reversal, a payout and a payout failure.
--
-- * Transactions come from the balance transaction list AND from the payouts' itemizations
--   (?payout=): an itemized transaction can land before the list catches up, and a payout's
--   transactions must all be here for it to reconcile. The latest extraction wins.
-- * source_payout_id: the automatic payout whose itemization lists the transaction (its own
--   `payout` transaction included); for a payout transaction whose itemization has not landed
--   yet, the payout naming it as its balance_transaction. NULL until paid out.
-- * source_charge_id: the charge the movement belongs to (a charge itself, a refund's or a
--   dispute's charge); its metadata (our integration's convention, set per charge) gives the
--   location, the PMS payment and patient ids and the payment type, for refunds and disputes too.
-- * org_location_id: metadata.location naming an organisation location (by its id or its
--   configured processor_location_ref), or naming a PMS
--   connection whose location with that ClinicNum (metadata.pms_clinic_num, 0 = none) is the
--   only one; NULL otherwise (location_ref keeps the raw value).

with listed as (

    select
        connection_id, id, amount, available_on, created, currency, fee, net,
        reporting_category, source, status, type, _extracted_at, _load_id
    from {{ ref('stg_stripe__balance_transactions') }}
    union all
    select
        connection_id, id, amount, available_on, created, currency, fee, net,
        reporting_category, source, status, type, _extracted_at, _load_id
    from {{ ref('stg_stripe__payout_balance_transactions') }}

),

transactions as (

    select *
    from listed
    qualify row_number() over (
        partition by connection_id, id order by _extracted_at desc, _load_id desc
    ) = 1

),

itemized as (

    -- Stripe pays a transaction out once; the guard keeps the grain if it ever said otherwise.
    select connection_id, id, payout_id
    from {{ ref('stg_stripe__payout_balance_transactions') }}
    qualify row_number() over (
        partition by connection_id, id order by _extracted_at desc, payout_id
    ) = 1

),

payouts as (

    select connection_id, balance_transaction, id as payout_id
    from {{ ref('stg_stripe__payouts') }}
    where balance_transaction is not null

),

charge_of_source as (

    select connection_id, id as source, charge from {{ ref('stg_stripe__refunds') }}
    union all
    select connection_id, id as source, charge from {{ ref('stg_stripe__disputes') }}

),

charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

organisation_locations as (

    select location_id, connection_id, clinic_num, processor_location_ref
    from {{ source('organisation', 'locations') }}

),

pms_locations as (

    -- One organisation location per (PMS connection, ClinicNum); ambiguous pairs map to none.
    select
        connection_id,
        clinic_num,
        case when count(*) = 1 then min(location_id) end as location_id
    from organisation_locations
    group by connection_id, clinic_num

),

linked as (

    select
        transactions.*,
        coalesce(itemized.payout_id, payouts.payout_id) as payout_id,
        case
            when starts_with(transactions.source, 'ch_') or starts_with(transactions.source, 'py_')
                then transactions.source
            else charge_of_source.charge
        end as charge_id
    from transactions
    left join itemized
        on transactions.connection_id = itemized.connection_id
        and transactions.id = itemized.id
    left join payouts
        on transactions.connection_id = payouts.connection_id
        and transactions.id = payouts.balance_transaction
    left join charge_of_source
        on transactions.connection_id = charge_of_source.connection_id
        and transactions.source = charge_of_source.source

),

with_metadata as (

    select
        linked.*,
        nullif(trim(charges.metadata_location), '') as location_ref,
        nullif(trim(charges.metadata_pms_payment_ref), '') as pms_payment_ref,
        nullif(trim(charges.metadata_patient_ref), '') as patient_ref,
        nullif(trim(charges.metadata_payment_type), '') as payment_type,
        coalesce(try_cast(charges.metadata_pms_clinic_num as bigint), 0) as pms_clinic_num
    from linked
    left join charges
        on linked.connection_id = charges.connection_id
        and linked.charge_id = charges.id

)

select
    with_metadata.connection_id,
    with_metadata.id as source_processor_transaction_id,
    with_metadata.payout_id as source_payout_id,
    with_metadata.charge_id as source_charge_id,
    coalesce(by_id.location_id, pms_locations.location_id) as org_location_id,
    with_metadata.location_ref,
    with_metadata.pms_payment_ref,
    with_metadata.patient_ref,
    with_metadata.payment_type,
    case
        when with_metadata.reporting_category in (
            'charge', 'refund', 'dispute', 'dispute_reversal', 'fee', 'payout', 'payout_reversal'
        ) then with_metadata.reporting_category
        when with_metadata.reporting_category = 'other_adjustment' then 'adjustment'
        else 'other'
    end as transaction_type,
    with_metadata.type as vendor_type,
    with_metadata.status,
    with_metadata.created as created_at,
    -- Stripe's available_on is a UTC midnight: its UTC calendar date
    cast(timezone('UTC', with_metadata.available_on) as date) as available_on,
    with_metadata.amount as gross_amount,
    with_metadata.fee as fee_amount,
    with_metadata.net as net_amount,
    lower(with_metadata.currency) as currency,
    -- Stripe objects carry no change stamp
    cast(null as timestamptz) as source_updated_at,
    with_metadata._extracted_at
from with_metadata
left join organisation_locations as by_id
    on with_metadata.location_ref in (by_id.location_id, by_id.processor_location_ref)
left join pms_locations
    on with_metadata.location_ref = pms_locations.connection_id
    and with_metadata.pms_clinic_num = pms_locations.clinic_num
