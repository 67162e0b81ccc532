"""`python -m simulators`: every vendor simulator from one world, until SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx

from simulators.demo import DEMO_APPS


def test_launcher_serves_every_vendor_and_stops_cleanly(tmp_path):
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "simulators", "--persons", "40", "--ready-file", str(ready)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, "the launcher exited early"
            assert time.monotonic() < deadline, "the launcher never became ready"
            time.sleep(0.1)
        urls = json.loads(ready.read_text())
        assert set(urls) == set(DEMO_APPS)

        # One world behind every port: advancing it through one simulator moves the others.
        def clocks() -> set[str]:
            return {httpx.get(f"{u}/_sim/health", timeout=10).json()["now_utc"]
                    for u in urls.values()}  # fmt: skip

        before = clocks()
        assert len(before) == 1
        body = {"minutes": 60, "seed": 1}
        httpx.post(f"{urls['opendental']}/_sim/advance", json=body, timeout=60).raise_for_status()
        after = clocks()
        assert len(after) == 1 and after != before
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
