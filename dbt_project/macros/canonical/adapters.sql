{#
    THE list of vendor adapters the canonical layer unions: vendor -> canonical entities it feeds.

    Integrating a vendor = one line here plus one adapter model per listed entity,
    `int_<entity>__<vendor>` (models/intermediate/<vendor>/), that selects the entity's canonical
    columns (macros/canonical/columns.sql) from the vendor's staging models. The union models
    (int_<entity>) add `source_system` (the vendor name below) and every surrogate key.

    Entities: locations, providers, patients, appointments, appointment_requests, calls, messages,
    pms_payments, pms_adjustments, processor_transactions, payouts, accounting_accounts,
    accounting_deposits. An entity no vendor feeds yet is an empty, typed table.
#}
{% macro canonical_adapters() %}
    {{- return({
        'opendental': ['locations', 'providers', 'patients', 'appointments', 'pms_payments', 'pms_adjustments'],
        'carestack':  ['locations', 'providers', 'patients', 'appointments', 'appointment_requests', 'calls'],
        'nexhealth':  ['locations', 'providers', 'patients', 'appointments', 'pms_payments'],
        'twilio':     ['calls', 'messages'],
        'stripe':     ['processor_transactions', 'payouts'],
        'quickbooks': ['accounting_accounts', 'accounting_deposits'],
    }) -}}
{% endmacro %}
