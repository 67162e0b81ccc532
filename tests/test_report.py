"""`chairside report`: the HTML page renders its charts in a real headless browser, and the
report asset shows the same figures as Dagster metadata."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from chairside import report as report_module

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium in a closed network: no background traffic, no sandbox (CI runs as root).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def analyst_copy(demo_platform) -> Path:
    assert demo_platform.returncode == 0, demo_platform.output[-3000:]
    return demo_platform.warehouse.with_name("analyst.duckdb")


def test_the_report_renders_every_chart_in_a_browser(analyst_copy, tmp_path):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "chairside.cli", "report", "--database", str(analyst_copy),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page_html = out.read_text()
    for title in ("Lead funnel", "Call abandonment", "Missed-call recovery",
                  "Payout reconciliation exceptions", "Writebacks", "Data freshness"):  # fmt: skip
        assert title in page_html, title
    assert "Covers 20" in page_html  # the period the marts cover

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5")
        charts = page.locator(".js-plotly-plot")
        assert charts.count() == 5
        for index in range(charts.count()):
            chart = charts.nth(index)
            # Something is drawn: bars, funnel segments or heatmap cells, not an empty frame.
            drawn = chart.locator(".trace, .hm, image").count()
            assert drawn > 0, f"chart {index} drew nothing"
            assert chart.bounding_box()["height"] > 200
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_the_report_asset_shows_the_same_figures(analyst_copy, tmp_path, monkeypatch):
    from orchestration.report_assets import build_report_asset

    monkeypatch.setenv("CHAIRSIDE_ANALYST_COPY", str(analyst_copy))
    monkeypatch.setenv("CHAIRSIDE_REPORT", str(tmp_path / "asset-report.html"))
    result = dg.materialize([build_report_asset()])
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    figures = report_module.build(analyst_copy).figures
    for name in ("funnel_leads", "funnel_booked", "calls_offered", "calls_abandon_rate",
                 "recovery_missed_callers", "reconciliation_exceptions"):  # fmt: skip
        assert metadata[name].value == figures[name], name
    assert figures["funnel_leads"] > 0 and figures["calls_offered"] > 0
    assert figures["reconciliation_exceptions"] > 0
    assert figures["writebacks_done"] > 0
    assert (tmp_path / "asset-report.html").exists()
