"""Start every vendor simulator (one world) as a child process on loopback, for the demo and
`make ui`, and point the demo organisation's connections at them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulators.demo import DEMO_CREDENTIALS


@contextmanager
def simulators(*, seed: int = 7, persons: int = 400, rps: float = 200.0) -> Iterator[dict]:
    """Yield ``{vendor: base_url}`` while the simulators run; stop them on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        command = [
            sys.executable, "-m", "simulators", "--seed", str(seed), "--persons", str(persons),
            "--rps", str(rps), "--ready-file", str(ready),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                if process.poll() is not None:
                    raise RuntimeError(f"simulators exited with code {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("simulators did not start within 120 s")
                time.sleep(0.1)
            yield json.loads(ready.read_text())
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def point_demo_config_at(urls: dict[str, str]) -> None:
    """Set the variables config/demo_org.yaml reads: base URLs and the demo credentials."""
    for name, value in DEMO_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    for vendor, url in urls.items():
        os.environ[f"CHAIRSIDE_{vendor.upper()}_BASE_URL"] = url
    if "quickbooks" in urls:
        os.environ["CHAIRSIDE_QUICKBOOKS_TOKEN_URL"] = (
            f"{urls['quickbooks']}/oauth2/v1/tokens/bearer"
        )
