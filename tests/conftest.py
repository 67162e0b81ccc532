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
