-- QuickBooks Online -> canonical accounting accounts: one row per Account of the chart of
-- accounts, inactive ones included (QuickBooks deactivates rather than deletes, renaming the
-- account "... (deleted)"). Classification is lowercased (Asset -> asset, Revenue -> revenue).

select
    connection_id,
    id as source_accounting_account_id,
    nullif(trim(parent_ref_value), '') as source_parent_account_id,
    nullif(trim(name), '') as account_name,
    nullif(trim(fully_qualified_name), '') as fully_qualified_name,
    nullif(trim(acct_num), '') as account_number,
    lower(classification) as classification,
    nullif(trim(account_type), '') as account_type,
    nullif(trim(account_sub_type), '') as account_subtype,
    lower(currency_ref_value) as currency,
    current_balance,
    active as is_active,
    meta_data_last_updated_time as source_updated_at,
    _extracted_at
from {{ ref('stg_quickbooks__accounts') }}
