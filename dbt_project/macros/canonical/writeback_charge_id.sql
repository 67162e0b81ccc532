{#
    The processor charge a PMS payment was written back from: Chairside's marker
    `[chairside <idempotency key> <charge id>]` (writeback/writes.py marker()) in the payment's
    note. NULL for a payment someone entered in the PMS.
#}
{% macro writeback_charge_id(note_column) -%}
    nullif(regexp_extract({{ note_column }}, '\[chairside \S+ (\S+)\]', 1), '')
{%- endmacro %}
