"""`make ui`: the Dagster UI with the Open Dental simulator running behind it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

from chairside import paths
from chairside.simulator_process import point_demo_config_at, simulators


def main() -> None:
    os.environ.setdefault("CHAIRSIDE_OD_RPS", "100")
    # The simulators start fresh: refresh tokens rotated by a previous session's simulator
    # mean nothing to them, so forget them (a real deployment keeps its token store).
    shutil.rmtree(paths.landing_root() / "_tokens", ignore_errors=True)
    with simulators(rps=200) as urls:
        point_demo_config_at(urls)
        print(f"Simulators: {urls}; starting the Dagster UI (Ctrl-C stops both)")
        command = [sys.executable, "-m", "dagster", "dev", "-m", "orchestration.definitions"]
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run(command, check=False)


if __name__ == "__main__":
    main()
