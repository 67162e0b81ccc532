-- Missed-call recovery per location and week (Monday of the missed call's local date), from
-- fct_missed_call_recovery. Callback rates leave out self-recovered callers (they got through
-- before the group reached out; counted on their own). Formulas: docs/calls.md.

with recovery as (
    select * from {{ ref('fct_missed_call_recovery') }}
),

counted as (
    select
        org_location_id,
        week_start,
        count(*) as missed_callers,
        sum(n_missed_calls) as missed_calls,
        count(*) filter (where is_self_recovered) as self_recovered,
        count(*) filter (where not is_self_recovered) as callback_eligible,
        count(*) filter (where not is_self_recovered and is_callback_within_1h)
            as callbacks_within_1h,
        count(*) filter (where not is_self_recovered and is_callback_within_24h)
            as callbacks_within_24h,
        median(minutes_to_callback) filter (where not is_self_recovered)
            as median_minutes_to_callback,
        quantile_cont(minutes_to_callback, 0.9) filter (where not is_self_recovered)
            as p90_minutes_to_callback,
        count(*) filter (where is_text_back_sent) as text_backs_sent,
        count(*) filter (where is_text_back_delivered) as text_backs_delivered,
        count(*) filter (where is_text_conversation_started) as text_conversations_started,
        count(*) filter (where is_text_conversation_answered) as text_conversations_answered,
        count(*) filter (where is_booked_within_7d) as booked_within_7d,
        count(*) filter (where is_new_contact) as new_patient_callers,
        count(*) filter (where is_new_contact and is_booked_within_7d)
            as new_patient_callers_booked,
        count(*) filter (where is_new_caller_lost) as new_patient_callers_lost,
        count(*) filter (where not is_24h_window_elapsed) as open_24h_windows,
        count(*) filter (where not is_7d_window_elapsed) as open_7d_windows
    from recovery
    group by org_location_id, week_start
)

select
    *,
    callbacks_within_1h / nullif(callback_eligible, 0) as callback_rate_1h,
    callbacks_within_24h / nullif(callback_eligible, 0) as callback_rate_24h,
    self_recovered / nullif(missed_callers, 0) as self_recovered_rate,
    text_conversations_started / nullif(text_backs_delivered, 0) as text_back_reply_rate,
    booked_within_7d / nullif(missed_callers, 0) as booked_within_7d_rate
from counted
