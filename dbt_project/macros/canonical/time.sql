{#
    Vendor-local wall-clock TIMESTAMP -> UTC instant (TIMESTAMPTZ), for sources that store local
    time without a zone (Open Dental) next to the IANA zone of the office (`source_timezone`).

    Local times that are ambiguous or do not exist because of a DST change are read as STANDARD
    time (the smaller UTC offset), in both hemispheres: in America/New_York, 2026-11-01 01:30
    (happens twice) -> 06:30 UTC, and 2026-03-08 02:30 (skipped) -> 07:30 UTC. The stored value
    cannot say which reading the office meant; this rule is DuckDB/ICU's and is pinned by unit
    tests (models/intermediate/opendental/_int_opendental__unit_tests.yml).
#}
{% macro canonical_local_to_utc(local_timestamp, timezone='source_timezone') -%}
    timezone({{ timezone }}, {{ local_timestamp }})
{%- endmacro %}
