-- Per PMS ledger payment: the processor charge it was posted from, if any, and what that says.
-- A charge names the PMS payment it settles as `<connection>:<payment id>` (pms_payment_ref).
--
-- reconciliation_state:
--   charged          a charge names it
--   duplicate        an uncharged card payment with the same patient and amount as a charged
--                    card payment dated within a day: that charge posted twice
--   without_charge   an uncharged card payment otherwise (code pms_payment_without_charge)
--   not_checked      not a card payment (type outside var reconciliation_card_payment_types),
--                    a refund, an income transfer, dated before the processor's first charge,
--                    or in a PMS connection no charge names (a practice using another processor)
-- Card payment types are the practices' own names, so they are a var; a PMS that records no
-- payment type (NexHealth) has no card payments to check.

{%- set card_types = var('reconciliation_card_payment_types', ['Credit Card', 'Patient Portal']) %}

with payments as (

    select * from {{ ref('int_pms_payments') }}

),

charges as (

    {{ recon_charges() }}

),

charge_refs as (

    select
        pms_payment_ref,
        min(processor_transaction_key) as charge_key,
        min(source_charge_id) as source_charge_id,
        count(*) as n_charges
    from charges
    where pms_payment_ref is not null
    group by pms_payment_ref

),

processor_ledgers as (

    -- The PMS connections the processor's charges post to: the part of the ref before its last ':'.
    select distinct regexp_extract(pms_payment_ref, '^(.*):', 1) as connection_id
    from charge_refs

),

processor_start as (

    select min(cast(timezone('UTC', created_at) as date)) as first_charge_date
    from charges

),

linked as (

    select
        payments.*,
        payments.connection_id || ':' || payments.source_pms_payment_id as pms_payment_ref,
        coalesce(payments.payment_type in (
            {%- for card_type in card_types %}
            '{{ card_type | replace("'", "''") }}'{{ "," if not loop.last }}
            {%- endfor %}
        ), false) as is_card_payment,
        charge_refs.charge_key,
        charge_refs.source_charge_id,
        coalesce(charge_refs.n_charges, 0) as n_charges
    from payments
    left join charge_refs
        on charge_refs.pms_payment_ref = payments.connection_id || ':' || payments.source_pms_payment_id

),

uncharged as (

    select linked.*
    from linked
    cross join processor_start
    where linked.is_card_payment
        and linked.connection_id in (select processor_ledgers.connection_id from processor_ledgers)
        and linked.charge_key is null
        and linked.amount > 0
        and not coalesce(linked.is_income_transfer, false)
        and linked.payment_date >= processor_start.first_charge_date - 1

),

twins as (

    select
        uncharged.pms_payment_key,
        charged.charge_key as duplicate_of_charge_key,
        charged.source_charge_id as duplicate_of_source_charge_id,
        row_number() over (
            partition by uncharged.pms_payment_key
            order by abs(date_diff('day', charged.payment_date, uncharged.payment_date)),
                charged.source_pms_payment_id
        ) as closest
    from uncharged
    inner join linked as charged
        on charged.connection_id = uncharged.connection_id
        and charged.source_patient_id = uncharged.source_patient_id
        and charged.amount = uncharged.amount
        and charged.is_card_payment
        and charged.charge_key is not null
        and abs(date_diff('day', charged.payment_date, uncharged.payment_date)) <= 1

)

select
    linked.pms_payment_key,
    linked.source_system,
    linked.connection_id,
    linked.source_pms_payment_id,
    linked.pms_payment_ref,
    linked.location_key,
    linked.source_location_id,
    linked.patient_key,
    linked.source_patient_id,
    linked.payment_date,
    linked.amount,
    linked.payment_type,
    linked.is_card_payment,
    linked.charge_key,
    linked.source_charge_id,
    linked.n_charges,
    twins.duplicate_of_charge_key,
    twins.duplicate_of_source_charge_id,
    case
        when linked.charge_key is not null then 'charged'
        when twins.pms_payment_key is not null then 'duplicate'
        when uncharged.pms_payment_key is not null then 'without_charge'
        else 'not_checked'
    end as reconciliation_state,
    case
        when linked.charge_key is null and twins.pms_payment_key is null
            and uncharged.pms_payment_key is not null
            then 'pms_payment_without_charge'
    end as code
from linked
left join uncharged
    on uncharged.pms_payment_key = linked.pms_payment_key
left join twins
    on twins.pms_payment_key = linked.pms_payment_key
    and twins.closest = 1
