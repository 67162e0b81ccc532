{#
    Processor charges with the PMS payment that records each: the one the charge's metadata names
    (`<connection>:<payment id>`, a payment keyed in at the PMS first), or else the payment
    Chairside wrote back from it (its note carries the charge id: writeback_charge_id). Written
    twice, the earliest is the posting and the other shows as a duplicate.

    Used as a CTE body: charges as ( {{ recon_charges() }} ).
#}
{% macro recon_charges() %}
with charges as (

    select * from {{ ref('int_processor_transactions') }}
    where transaction_type = 'charge'

),

written as (

    select
        writeback_charge_id as source_charge_id,
        arg_min(
            connection_id || ':' || source_pms_payment_id, source_pms_payment_id
        ) as pms_payment_ref
    from {{ ref('int_pms_payments') }}
    where writeback_charge_id is not null
    group by writeback_charge_id

)

select
    charges.* replace (
        coalesce(charges.pms_payment_ref, written.pms_payment_ref) as pms_payment_ref
    ),
    charges.pms_payment_ref is null and written.pms_payment_ref is not null as is_written_back
from charges
left join written
    on written.source_charge_id = charges.source_charge_id
{% endmacro %}
