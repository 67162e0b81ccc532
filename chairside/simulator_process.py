"""Start the Open Dental simulator as a child process on loopback (for the demo and `make ui`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The simulator's demo credentials (not secrets: they only open the local simulator).
DEMO_ENV = {
    "OD_DEVELOPER_KEY": "demo-developer-key",
    "OD_RIVERSIDE_CUSTOMER_KEY": "cust-riverside",
    "OD_LAKESIDE_CUSTOMER_KEY": "cust-lakeside",
}


@contextmanager
def opendental_simulator(
    *, seed: int = 7, persons: int = 400, rps: float = 200.0, port: int = 0
) -> Iterator[str]:
    """Yield the simulator's base URL (``http://127.0.0.1:PORT``); stop it on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready"
        command = [
            sys.executable, "-m", "simulators.opendental",
            "--seed", str(seed), "--persons", str(persons), "--port", str(port),
            "--rps", str(rps), "--burst", "5", "--developer-key", DEMO_ENV["OD_DEVELOPER_KEY"],
            "--ready-file", str(ready),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not ready.exists() or not ready.read_text().strip():
                if process.poll() is not None:
                    raise RuntimeError(f"simulator exited with code {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("simulator did not start within 120 s")
                time.sleep(0.1)
            yield ready.read_text().strip()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def use_demo_credentials() -> None:
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
