-- How fresh the warehouse is: per canonical entity, source system and connection, the latest
-- change the source reported and the latest extraction. The report's "data as of" line and
-- analysts' first question ("is this up to date?") read it.

{%- set entities = canonical_entities() %}

{% for entity in entities %}
select
    '{{ entity }}' as entity,
    source_system,
    connection_id,
    count(*) as row_count,
    max(source_updated_at) as latest_source_update_at,
    max(_extracted_at) as latest_extracted_at
from {{ ref('int_' ~ entity) }}
group by source_system, connection_id
{% if not loop.last %}union all{% endif %}
{% endfor %}
