"""`make demo`'s driver, end to end: every simulator, every sync job, dbt, the verification."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_group_and_verifies_it(demo_platform):
    output = demo_platform.output
    assert demo_platform.returncode == 0, output[-3000:]
    assert "Staging equals the simulator's world" in output
    for vendor in ("opendental", "carestack", "nexhealth", "twilio", "stripe", "quickbooks"):
        assert f"full sync {vendor} " in output, vendor
        assert (demo_platform.truth / vendor).is_dir(), vendor
    assert demo_platform.warehouse.exists()
    assert "Patient identity: enquiries by matching outcome" in output
    assert "Writebacks (exactly once" in output and "pms_payment" in output
