{#
    Call mart helpers (docs/calls.md). The call metrics are shared by the call aggregates
    (metrics-and-matching section 1). Use them in two steps, so a coarser grain can re-add the
    counts and recompute the rates:

        with counted as (
            select org_location_id, local_date, {{ call_counts() }}
            from {{ ref('fct_calls') }} group by all
        )
        select counted.*, {{ call_rates('counted') }}
        from counted cross join settings

    call_rates needs `settings.abandon_rate_formula` in scope (source('organisation', 'settings')).
#}

{#- Counts over fct_calls rows. -#}
{% macro call_counts() -%}
    count(*) filter (where direction = 'inbound') as inbound_calls,
    count(*) filter (where is_offered) as offered_calls,
    count(*) filter (where is_answered) as answered_calls,
    count(*) filter (where is_abandoned) as abandoned_calls,
    count(*) filter (where is_short_abandon) as short_abandons,
    count(*) filter (where call_outcome = 'abandoned_in_menu') as abandoned_in_menu,
    count(*) filter (where is_voicemail) as voicemails,
    count(*) filter (where call_outcome = 'missed') as no_answer_calls,
    count(*) filter (where call_outcome = 'busy_or_failed') as busy_or_failed_calls,
    count(is_answered_within_sl) as service_level_calls,
    count(*) filter (where is_answered_within_sl) as answered_within_sl,
    count(wait_seconds) filter (where is_answered) as answered_with_wait,
    coalesce(sum(wait_seconds) filter (where is_answered), 0) as answered_wait_seconds,
    count(*) filter (where direction = 'outbound') as outbound_calls,
    count(*) filter (where call_outcome = 'outbound_answered') as outbound_answered
{%- endmacro %}

{#- Rates from the counts (fractions 0-1; NULL when the denominator is 0). -#}
{% macro call_rates(counts) -%}
    case settings.abandon_rate_formula
        when 'include_short' then
            ({{ counts }}.abandoned_calls + {{ counts }}.short_abandons)
            / nullif({{ counts }}.offered_calls, 0)
        else
            {{ counts }}.abandoned_calls
            / nullif({{ counts }}.offered_calls - {{ counts }}.short_abandons, 0)
    end as abandon_rate,
    ({{ counts }}.abandoned_calls + {{ counts }}.short_abandons)
        / nullif({{ counts }}.offered_calls, 0) as raw_abandon_rate,
    {{ counts }}.answered_calls
        / nullif({{ counts }}.offered_calls - {{ counts }}.short_abandons, 0) as answer_rate,
    {{ counts }}.answered_within_sl / nullif({{ counts }}.service_level_calls, 0) as service_level,
    {{ counts }}.answered_wait_seconds / nullif({{ counts }}.answered_with_wait, 0)
        as avg_speed_of_answer_seconds,
    {{ counts }}.voicemails / nullif({{ counts }}.offered_calls, 0) as voicemail_rate,
    settings.abandon_rate_formula,
    settings.short_abandon_seconds,
    settings.service_level_seconds
{%- endmacro %}

{#- A caller's pseudonymous key: md5 of the standardised E.164 number (NULL without one). The
    published marts carry this key, never the number; equal numbers give equal keys. -#}
{% macro caller_key(phone_e164) -%}
    md5({{ phone_e164 }})
{%- endmacro %}
