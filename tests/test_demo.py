"""`make demo`'s driver, end to end: every simulator, every sync job, dbt, the verification."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_group_and_verifies_it(tmp_path):
    env = {
        **os.environ,
        "CHAIRSIDE_DEMO_ROOT": str(tmp_path / "demo"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    (tmp_path / "dagster").mkdir()
    for name in ("CHAIRSIDE_CONFIG", "CHAIRSIDE_LANDING", "CHAIRSIDE_WAREHOUSE"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "chairside.demo"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Staging equals the simulator's world" in output
    for vendor in ("opendental", "carestack", "nexhealth", "twilio", "stripe", "quickbooks"):
        assert f"extract {vendor} " in output, vendor
    assert (tmp_path / "demo" / "warehouse" / "chairside.duckdb").exists()
