{#
    The canonical column list of every entity: (name, type) in output order. One list per entity,
    shared by every vendor; meanings are in docs/canonical-model.md and the models' yml.

    Type `key:<source id column>` is a surrogate key the union computes:
    generate_surrogate_key(['source_system', 'connection_id', <source id column>]), NULL when the
    source id is NULL. The first column is the entity's own key. Keys are unique within an entity
    (the same native id in two entities hashes alike: join keys of the same entity only).

    `source_system` is the vendor name from canonical_adapters(); adapters select every other
    non-key column (a vendor without a value selects a typed NULL). Columns listed in `derived`
    are not selected from adapters either: the entity's union model computes them
    (appointments.canonical_status, from the status crosswalk seed).

    Conventions: timestamps are UTC (timestamptz); dates are the location's local calendar dates
    as the vendor records them; money is DECIMAL(14,2) in the currency's major unit; native ids
    are text; empty vendor text ("") is NULL.
#}
{% macro canonical_entities() %}
    {%- set lineage = [('source_updated_at', 'timestamptz'), ('_extracted_at', 'timestamptz')] -%}
    {%- set address = [
        ('address_line1', 'varchar'), ('address_line2', 'varchar'), ('city', 'varchar'),
        ('state', 'varchar'), ('postal_code', 'varchar')
    ] -%}
    {%- set entities = {
        'locations': {'columns': [
            ('location_key', 'key:source_location_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_location_id', 'varchar'),
            ('location_name', 'varchar'), ('location_abbr', 'varchar'),
        ] + address + [
            ('phone', 'varchar'), ('timezone', 'varchar'), ('is_active', 'boolean'),
        ] + lineage},

        'providers': {'columns': [
            ('provider_key', 'key:source_provider_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_provider_id', 'varchar'),
            ('first_name', 'varchar'), ('last_name', 'varchar'), ('suffix', 'varchar'),
            ('provider_abbr', 'varchar'), ('npi', 'varchar'),
            ('is_hygienist', 'boolean'), ('is_person', 'boolean'), ('is_active', 'boolean'),
        ] + lineage},

        'patients': {'columns': [
            ('patient_key', 'key:source_patient_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_patient_id', 'varchar'),
            ('location_key', 'key:source_location_id'), ('source_location_id', 'varchar'),
            ('guarantor_key', 'key:source_guarantor_id'), ('source_guarantor_id', 'varchar'),
            ('primary_provider_key', 'key:source_primary_provider_id'), ('source_primary_provider_id', 'varchar'),
            ('first_name', 'varchar'), ('middle_name', 'varchar'), ('last_name', 'varchar'),
            ('preferred_name', 'varchar'), ('birth_date', 'date'), ('gender', 'varchar'),
            ('patient_status', 'varchar'),
            ('email', 'varchar'), ('mobile_phone', 'varchar'), ('home_phone', 'varchar'), ('work_phone', 'varchar'),
        ] + address + [
            ('sms_consent', 'boolean'), ('first_visit_date', 'date'), ('created_date', 'date'),
        ] + lineage},

        'appointments': {'derived': ['canonical_status'], 'columns': [
            ('appointment_key', 'key:source_appointment_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_appointment_id', 'varchar'),
            ('location_key', 'key:source_location_id'), ('source_location_id', 'varchar'),
            ('patient_key', 'key:source_patient_id'), ('source_patient_id', 'varchar'),
            ('provider_key', 'key:source_provider_id'), ('source_provider_id', 'varchar'),
            ('hygienist_key', 'key:source_hygienist_id'), ('source_hygienist_id', 'varchar'),
            ('source_operatory_id', 'varchar'),
            ('vendor_status', 'varchar'), ('canonical_status', 'varchar'),
            ('start_at', 'timestamptz'), ('end_at', 'timestamptz'), ('duration_minutes', 'integer'),
            ('timezone', 'varchar'), ('booked_at', 'timestamptz'),
            ('arrived_at', 'timestamptz'), ('seated_at', 'timestamptz'), ('dismissed_at', 'timestamptz'),
            ('cancelled_at', 'timestamptz'),
            ('is_new_patient', 'boolean'), ('is_hygiene', 'boolean'), ('description', 'varchar'),
        ] + lineage},

        'appointment_requests': {'columns': [
            ('appointment_request_key', 'key:source_appointment_request_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_appointment_request_id', 'varchar'),
            ('location_key', 'key:source_location_id'), ('source_location_id', 'varchar'),
            ('patient_key', 'key:source_patient_id'), ('source_patient_id', 'varchar'),
            ('provider_key', 'key:source_provider_id'), ('source_provider_id', 'varchar'),
            ('appointment_key', 'key:source_appointment_id'), ('source_appointment_id', 'varchar'),
            ('vendor_status', 'varchar'), ('channel', 'varchar'),
            ('requested_at', 'timestamptz'), ('requested_start_at', 'timestamptz'),
            ('is_new_patient', 'boolean'),
            ('first_name', 'varchar'), ('last_name', 'varchar'), ('birth_date', 'date'),
            ('email', 'varchar'), ('phone', 'varchar'), ('reason', 'varchar'),
        ] + lineage},

        'calls': {'columns': [
            ('call_key', 'key:source_call_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_call_id', 'varchar'),
            ('org_location_id', 'varchar'), ('direction', 'varchar'),
            ('from_number', 'varchar'), ('to_number', 'varchar'),
            ('started_at', 'timestamptz'), ('answered_at', 'timestamptz'), ('ended_at', 'timestamptz'),
            ('ring_seconds', 'integer'), ('talk_seconds', 'integer'), ('duration_seconds', 'integer'),
            ('outcome', 'varchar'), ('vendor_status', 'varchar'), ('n_legs', 'integer'),
        ] + lineage},

        'messages': {'columns': [
            ('message_key', 'key:source_message_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_message_id', 'varchar'),
            ('org_location_id', 'varchar'), ('direction', 'varchar'), ('is_automated', 'boolean'),
            ('from_number', 'varchar'), ('to_number', 'varchar'), ('sent_at', 'timestamptz'),
            ('vendor_status', 'varchar'), ('segments', 'integer'), ('error_code', 'varchar'),
        ] + lineage},

        'pms_payments': {'columns': [
            ('pms_payment_key', 'key:source_pms_payment_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_pms_payment_id', 'varchar'),
            ('location_key', 'key:source_location_id'), ('source_location_id', 'varchar'),
            ('patient_key', 'key:source_patient_id'), ('source_patient_id', 'varchar'),
            ('payment_date', 'date'), ('entry_date', 'date'), ('amount', 'decimal(14,2)'),
            ('payment_type', 'varchar'), ('is_income_transfer', 'boolean'), ('source_deposit_id', 'varchar'),
            ('writeback_charge_id', 'varchar'),
        ] + lineage},

        'pms_adjustments': {'columns': [
            ('pms_adjustment_key', 'key:source_pms_adjustment_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_pms_adjustment_id', 'varchar'),
            ('location_key', 'key:source_location_id'), ('source_location_id', 'varchar'),
            ('patient_key', 'key:source_patient_id'), ('source_patient_id', 'varchar'),
            ('provider_key', 'key:source_provider_id'), ('source_provider_id', 'varchar'),
            ('adjustment_date', 'date'), ('entry_date', 'date'), ('amount', 'decimal(14,2)'),
            ('adjustment_type', 'varchar'),
        ] + lineage},

        'processor_transactions': {'columns': [
            ('processor_transaction_key', 'key:source_processor_transaction_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_processor_transaction_id', 'varchar'),
            ('payout_key', 'key:source_payout_id'), ('source_payout_id', 'varchar'),
            ('source_charge_id', 'varchar'), ('org_location_id', 'varchar'), ('location_ref', 'varchar'),
            ('pms_payment_ref', 'varchar'), ('patient_ref', 'varchar'), ('payment_type', 'varchar'),
            ('transaction_type', 'varchar'), ('vendor_type', 'varchar'),
            ('status', 'varchar'), ('created_at', 'timestamptz'), ('available_on', 'date'),
            ('gross_amount', 'decimal(14,2)'), ('fee_amount', 'decimal(14,2)'), ('net_amount', 'decimal(14,2)'),
            ('currency', 'varchar'),
        ] + lineage},

        'payouts': {'columns': [
            ('payout_key', 'key:source_payout_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_payout_id', 'varchar'),
            ('status', 'varchar'), ('amount', 'decimal(14,2)'), ('currency', 'varchar'),
            ('created_at', 'timestamptz'), ('arrival_date', 'date'),
            ('method', 'varchar'), ('is_automatic', 'boolean'), ('failure_code', 'varchar'),
        ] + lineage},

        'accounting_accounts': {'columns': [
            ('accounting_account_key', 'key:source_accounting_account_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_accounting_account_id', 'varchar'),
            ('parent_account_key', 'key:source_parent_account_id'), ('source_parent_account_id', 'varchar'),
            ('account_name', 'varchar'), ('fully_qualified_name', 'varchar'), ('account_number', 'varchar'),
            ('classification', 'varchar'), ('account_type', 'varchar'), ('account_subtype', 'varchar'),
            ('currency', 'varchar'), ('current_balance', 'decimal(14,2)'), ('is_active', 'boolean'),
        ] + lineage},

        'accounting_deposits': {'columns': [
            ('accounting_deposit_key', 'key:source_accounting_deposit_id'),
            ('source_system', 'varchar'), ('connection_id', 'varchar'), ('source_accounting_deposit_id', 'varchar'),
            ('deposit_account_key', 'key:source_deposit_account_id'), ('source_deposit_account_id', 'varchar'),
            ('deposit_date', 'date'), ('total_amount', 'decimal(14,2)'), ('currency', 'varchar'),
            ('doc_number', 'varchar'), ('memo', 'varchar'), ('processor_payout_ref', 'varchar'),
            ('source_department_id', 'varchar'), ('created_at', 'timestamptz'),
        ] + lineage},
    } -%}
    {{- return(entities) -}}
{% endmacro %}


{#- The (name, type) list of one entity; fails at compile time for an unknown entity. -#}
{% macro canonical_columns(entity) %}
    {%- set entities = canonical_entities() -%}
    {%- if entity not in entities -%}
        {{ exceptions.raise_compiler_error("unknown canonical entity '" ~ entity ~ "' (known: " ~ entities.keys() | list | join(', ') ~ ")") }}
    {%- endif -%}
    {{- return(entities[entity]['columns']) -}}
{% endmacro %}


{#- Names of the columns the entity's union model computes itself (not taken from adapters). -#}
{% macro canonical_derived_columns(entity) %}
    {{- return(canonical_entities()[entity].get('derived', [])) -}}
{% endmacro %}
