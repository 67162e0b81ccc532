"""Crash injection: a real sender process (``python -m writeback.run --send-only``) is killed at
every step boundary of the delivery protocol, over many randomized runs, while the simulator
also loses responses after committing writes. Whatever happens, every intended write ends with
exactly one record in the vendor system: never zero, never two.

Step boundaries (writeback/deliver.py ``crash_point``): after the claim is committed, after the
lookup, after the send (the vendor committed, nothing recorded yet), after recording."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import organisation_for
from tests.test_writeback_pms import (
    OD,
    commlog,
    confirm,
    patients,
    payment,
    plan,
    scheduled,
    written,
)
from writeback.deliver import CRASH_ENV, CRASH_POINTS
from writeback.outbox import Outbox

SCENARIOS_PER_POINT = 2
MAX_RUNS = 15  # sender launches per scenario before the test gives up


def _config(opendental, tmp_path: Path) -> Path:
    organisation = organisation_for(opendental).model_dump(mode="json")
    organisation["writeback"] = {"max_attempts": 50}  # crashes may take many attempts
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(organisation))
    return path


def _send(env: dict[str, str], crash: str | None) -> int:
    run_env = {k: v for k, v in env.items() if k != CRASH_ENV}
    if crash:
        run_env[CRASH_ENV] = crash
    result = subprocess.run(
        [sys.executable, "-m", "writeback.run", "--send-only", "--target", OD],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode


def _lose_responses(url: str, rng: random.Random) -> None:
    """Lose the answer to some writes after they committed (the outcome a timeout leaves)."""
    paths = ["^/payments$", "^/appointments/\\d+/Confirm$", "^/commlogs$"]
    for path in rng.sample(paths, k=rng.randint(1, 3)):
        rule = {
            "path": path,
            "kind": "lost_response",
            "method": "POST" if "Confirm" not in path else "PUT",
            "skip": rng.randint(0, 2),
            "times": rng.randint(1, 2),
        }
        httpx.post(f"{url}/_sim/faults", json=[rule]).raise_for_status()


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_every_write_lands_exactly_once_whatever_kills_the_sender(
    point, opendental, tmp_path, monkeypatch
):
    world = opendental.world
    env = {
        **os.environ,
        "CHAIRSIDE_CONFIG": str(_config(opendental, tmp_path)),
        "CHAIRSIDE_OUTBOX": str(tmp_path / "outbox.sqlite"),
        "CHAIRSIDE_LANDING": str(tmp_path / "landing"),
    }
    outbox = Outbox(env["CHAIRSIDE_OUTBOX"])
    pats = patients(world, OD, 4)
    upcoming = scheduled(world, OD, 3 * SCENARIOS_PER_POINT)
    crashes = 0
    for scenario in range(SCENARIOS_PER_POINT):
        rng = random.Random(f"{point}-{scenario}")
        tag = f"{point}{scenario}"
        keys = plan(
            outbox,
            OD,
            *[
                ("pms_payment", f"ch_{tag}_{i}", payment(pats[i], f"ch_{tag}_{i}"))
                for i in range(4)
            ],
            *[
                ("appointment_confirm", f"SM_{tag}_{i}", confirm(apt, pat, f"SM_{tag}_{i}"))
                for i, (apt, pat) in enumerate(upcoming[3 * scenario : 3 * scenario + 3])
            ],
            *[("commlog", f"CA_{tag}_{i}", commlog(pats[i], f"CA_{tag}_{i}")) for i in range(2)],
        )
        _lose_responses(opendental.url, rng)
        for _ in range(MAX_RUNS):
            # Kill the sender at this boundary, on a random visit to it, in most runs.
            crash = f"{point}:{rng.randint(1, 4)}" if rng.random() < 0.7 else None
            if _send(env, crash) == 137:
                crashes += 1
            rows = [outbox.get(key) for key in keys.values()]
            if all(row.state == "done" for row in rows):
                break
        states = sorted({row.state for row in rows})
        assert states == ["done"], f"scenario {tag}: {states}"

        # Exactly one record per intended write in the vendor system.
        markers = written(opendental.url)["markers"]
        for ref, key in keys.items():
            if ref.startswith(("ch_", "CA_")):
                assert markers.get(key) == 1, f"{ref}: {markers.get(key)} records"
        writes = written(opendental.url)["writes"]
        confirms = [w for w in writes if w["kind"] == "appointment_confirm"]
        for apt, _ in upcoming[3 * scenario : 3 * scenario + 3]:
            assert [w["AptNum"] for w in confirms].count(apt) == 1, f"appointment {apt}"
        # The outbox knows where each landed.
        assert all(outbox.get(key).remote_id for key in keys.values())
    assert crashes >= SCENARIOS_PER_POINT, f"the sender was killed only {crashes} times"
