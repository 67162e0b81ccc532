"""`make ui`: the Dagster UI with the Open Dental simulator running behind it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from chairside.simulator_process import opendental_simulator, use_demo_credentials


def main() -> None:
    use_demo_credentials()
    os.environ.setdefault("CHAIRSIDE_OD_RPS", "100")
    with opendental_simulator(rps=200, port=8765) as url:
        os.environ["CHAIRSIDE_OD_BASE_URL"] = f"{url}/api/v1"
        print(f"Open Dental simulator on {url}; starting the Dagster UI (Ctrl-C stops both)")
        command = [sys.executable, "-m", "dagster", "dev", "-m", "orchestration.definitions"]
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run(command, check=False)


if __name__ == "__main__":
    main()
