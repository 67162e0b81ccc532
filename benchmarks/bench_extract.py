"""Extraction throughput and scaling, side by side with a peer loader in the same run.

For each world size, a full sync of Open Dental patients + appointments over real HTTP on
loopback, with the simulator in "local API" mode (unthrottled, 1000-row pages) so the pipeline,
not the vendor's rate limit, is what is measured. Two loaders read the same pages:

- chairside: contracts + durable Parquet batches + checkpoints (``extract.opendental``);
- peer: the common hand-rolled loader, which inserts each page's rows into a DuckDB table with
  ``executemany`` (no contracts, no checkpoints), as many in-house connectors do.

Run: ``.venv/bin/python benchmarks/bench_extract.py [n_persons ...]`` (default 1000 10000 50000).
Against the real cloud API the ceiling is the vendor's: 1 request/s x 100 rows = 100 rows/s
per office, far below either loader.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chairside.config import Organisation
from extract.http import ApiClient
from extract.opendental.connector import sync_entity
from simulators.generate import generate_world
from simulators.opendental.app import OpenDentalSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.world import WorldSpec

DEV_KEY = "bench-developer-key"
ENTITIES = {"patients": "/patients/Simple", "appointments": "/appointments"}
PAGE = 1000


def main(sizes: list[int]) -> None:
    print(f"{'persons':>8} {'loader':>10} {'rows':>9} {'seconds':>8} {'rows/s':>9}")
    for n_persons in sizes:
        world = generate_world(WorldSpec(seed=3, n_persons=n_persons))
        office = world.spec.offices[0]
        settings = OpenDentalSimSettings(
            developer_key=DEV_KEY, requests_per_second=None, max_page_size=PAGE
        )
        os.environ["OD_DEVELOPER_KEY"] = DEV_KEY
        os.environ["OD_BENCH_CUSTOMER_KEY"] = office.customer_key
        with serve_in_thread(create_app(world, settings)) as server:
            url = f"{server.url}/api/v1"
            _warm_up(url, office.customer_key)
            for name, loader in (("chairside", _chairside), ("peer", _peer)):
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.perf_counter()
                    rows = loader(url, office, Path(tmp))
                    seconds = time.perf_counter() - started
                print(f"{n_persons:>8} {name:>10} {rows:>9} {seconds:>8.2f} {rows / seconds:>9.0f}")


def _warm_up(url: str, customer_key: str) -> None:
    """Let the simulator build its per-office caches so neither loader pays for them."""
    with _client(url, customer_key) as client:
        for path in ENTITIES.values():
            client.get_json(path, {"Limit": 1})


def _client(url: str, customer_key: str) -> ApiClient:
    headers = {"Authorization": f"ODFHIR {DEV_KEY}/{customer_key}"}
    return ApiClient("opendental[bench]", url, headers, requests_per_second=10_000)


def _chairside(url: str, office, tmp: Path) -> int:
    org = Organisation.model_validate(
        {
            "id": "bench",
            "name": "Bench",
            "connections": [
                {
                    "id": office.key,
                    "vendor": "opendental",
                    "base_url": url,
                    "developer_key_env": "OD_DEVELOPER_KEY",
                    "customer_key_env": "OD_BENCH_CUSTOMER_KEY",
                    "timezone": office.timezone,
                    "requests_per_second": 10_000,
                    "page_size": PAGE,
                }
            ],
        }
    )
    connection = org.connections[0]
    return sum(
        sync_entity(connection, entity, landing_root=tmp, mode="full").rows for entity in ENTITIES
    )


def _peer(url: str, office, tmp: Path) -> int:
    rows = 0
    with _client(url, office.customer_key) as client, duckdb.connect(str(tmp / "p.duckdb")) as con:
        for entity, path in ENTITIES.items():
            con.execute(f"create table {entity} (key varchar, record varchar)")
            offset = 0
            while True:
                page = client.get_json(path, {"Offset": offset, "Limit": PAGE})
                key = "PatNum" if entity == "patients" else "AptNum"
                con.executemany(
                    f"insert into {entity} values (?, ?)",
                    [(str(r[key]), orjson.dumps(r).decode()) for r in page],
                )
                rows += len(page)
                offset += len(page)
                if len(page) < PAGE:
                    break
    return rows


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000, 50000])
