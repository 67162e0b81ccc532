"""The sensor that applies review decisions: a new decision asks for one rebuild of identity and
everything downstream; no new decision asks for nothing."""

from __future__ import annotations

import dagster as dg

from orchestration.automation import build_review_decisions_sensor, review_decisions_selection
from orchestration.dbt_assets import build_dbt_assets
from transforms.identity import decisions


def test_a_new_decision_requests_one_rebuild(tmp_path, monkeypatch):
    path = tmp_path / "decisions.jsonl"
    monkeypatch.setenv("CHAIRSIDE_DECISIONS", str(path))
    dbt_assets = build_dbt_assets()
    sensor = build_review_decisions_sensor(dbt_assets)
    selected = review_decisions_selection(dbt_assets).resolve([dbt_assets])
    targets = {key.path[-1] for key in selected}
    assert {"identity_review_decisions", "identity_enquiries"} <= targets
    assert "int_patients" not in targets  # upstream of the decisions: not rebuilt

    with dg.build_sensor_context(cursor=None) as context:
        assert isinstance(sensor(context), dg.SkipReason)  # no decision yet
    decisions.record(path, decisions.Decision(reviewer="r", action="no_match", subject_key="e"))
    with dg.build_sensor_context(cursor=None) as context:
        request = sensor(context)
        assert isinstance(request, dg.RunRequest)
        cursor = context.cursor
    with dg.build_sensor_context(cursor=cursor) as context:
        assert isinstance(sensor(context), dg.SkipReason)  # applied once
