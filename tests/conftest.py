"""Shared fixtures: a seeded world served by the Open Dental simulator over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chairside.config import Organisation
from simulators.generate import generate_world
from simulators.opendental.app import OpenDentalSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.world import World, WorldSpec

DEVELOPER_KEY = "test-developer-key"


@dataclass
class OpenDental:
    world: World
    app: object
    url: str  # server root, e.g. http://127.0.0.1:PORT

    @property
    def faults(self):
        return self.app.state.faults

    @property
    def stats(self):
        return self.app.state.stats


# The Open Dental offices of the default group: the Open Dental tests need no other vendor.
OPENDENTAL_OFFICES = tuple(o for o in WorldSpec().offices if o.pms == "opendental")


@pytest.fixture
def world() -> World:
    return generate_world(WorldSpec(seed=11, n_persons=150, offices=OPENDENTAL_OFFICES))


@contextmanager
def serve_opendental(
    world: World, monkeypatch: pytest.MonkeyPatch, **settings
) -> Iterator[OpenDental]:
    """The simulator for ``world`` on a free loopback port (unthrottled unless told)."""
    settings = {"requests_per_second": None, **settings}
    app = create_app(world, OpenDentalSimSettings(developer_key=DEVELOPER_KEY, **settings))
    set_credentials(world, monkeypatch)
    with serve_in_thread(app) as server:
        yield OpenDental(world, app, server.url)


@pytest.fixture
def opendental(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenDental]:
    with serve_opendental(world, monkeypatch) as od:
        yield od


def set_credentials(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OD_DEVELOPER_KEY", DEVELOPER_KEY)
    for office in world.offices_on("opendental"):
        monkeypatch.setenv(f"OD_{office.key.upper()}_CUSTOMER_KEY", office.customer_key)


def organisation_for(od: OpenDental, **connection_settings) -> Organisation:
    """An organisation with one Open Dental connection per simulated office."""
    settings = {
        "requests_per_second": 500.0,
        "batch_rows": 150,  # small batches, so every sync spans several checkpoints
        "read_timeout_s": 5.0,
        **connection_settings,
    }
    return Organisation.model_validate(
        {
            "id": "test_group",
            "name": "Test Group",
            "connections": [
                {
                    "id": office.key,
                    "vendor": "opendental",
                    "base_url": f"{od.url}/api/v1",
                    "developer_key_env": "OD_DEVELOPER_KEY",
                    "customer_key_env": f"OD_{office.key.upper()}_CUSTOMER_KEY",
                    "timezone": office.timezone,
                    **settings,
                }
                for office in od.world.offices_on("opendental")
            ],
        }
    )


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@dataclass
class DemoPlatform:
    """`make demo`'s pipeline, run once for the session: every simulator, every sync job, dbt."""

    root: Path  # CHAIRSIDE_DEMO_ROOT: landing/, warehouse/, truth/<vendor>/, decisions/, writeback/
    output: str
    returncode: int
    dagster_home: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "chairside.duckdb"

    @property
    def truth(self) -> Path:
        return self.root / "truth"


# Bigger than the demo's default group: enough enquiries to measure matching quality on.
DEMO_TEST_PERSONS = 1200


@pytest.fixture(scope="session")
def demo_platform(tmp_path_factory) -> DemoPlatform:
    import os
    import subprocess
    import sys

    reuse = os.environ.get("CHAIRSIDE_TEST_REUSE_DEMO")
    if reuse:  # developing a test: a demo already run into this folder (its log beside it)
        root = Path(reuse)
        log = root.with_suffix(".log")
        return DemoPlatform(root, log.read_text() if log.exists() else "", 0, root / "dagster")
    base = tmp_path_factory.mktemp("demo_platform")
    root, dagster_home = base / "demo", base / "dagster"
    dagster_home.mkdir()
    env = {
        **os.environ,
        "CHAIRSIDE_DEMO_ROOT": str(root),
        "CHAIRSIDE_DEMO_PERSONS": str(DEMO_TEST_PERSONS),
        "DAGSTER_HOME": str(dagster_home),
    }
    for name in ("CHAIRSIDE_CONFIG", "CHAIRSIDE_LANDING", "CHAIRSIDE_WAREHOUSE",
                 "CHAIRSIDE_DECISIONS", "CHAIRSIDE_OUTBOX"):  # fmt: skip
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "chairside.demo"],
        env=env, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    return DemoPlatform(root, result.stdout + result.stderr, result.returncode, dagster_home)
