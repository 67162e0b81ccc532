"""Serve a generated world's QuickBooks Online company until SIGTERM/SIGINT.

    python -m simulators.quickbooks --seed 7 --persons 400 --port 8767 [--ready-file PATH]

Prints one line with the base URL once the server accepts connections, and writes the URL to
``--ready-file`` (atomically). The token endpoint is ``{url}/oauth2/v1/tokens/bearer``; the API
is under ``{url}/v3/company/{realm}``. The first refresh token is ``--refresh-token``; the
simulator rotates it on every refresh, so a client must keep the newest one.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.generate import generate_world
from simulators.quickbooks.app import QuickBooksSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.stripe.__main__ import write_ready_file
from simulators.world import WorldSpec


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = QuickBooksSimSettings()
    parser = argparse.ArgumentParser(prog="python -m simulators.quickbooks", description=__doc__)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--persons", type=int, default=WorldSpec.n_persons)
    parser.add_argument("--port", type=int, default=8767, help="0 picks a free port")
    parser.add_argument(
        "--rpm",
        type=float,
        default=defaults.requests_per_minute,
        help="requests per minute per realm; 0 disables throttling",
    )
    parser.add_argument("--realm-id", default=defaults.realm_id)
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--refresh-token", default=defaults.initial_refresh_token)
    parser.add_argument("--ready-file", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    world = generate_world(WorldSpec(seed=args.seed, n_persons=args.persons))
    settings = QuickBooksSimSettings(
        realm_id=args.realm_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        initial_refresh_token=args.refresh_token,
        requests_per_minute=args.rpm or None,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with serve_in_thread(create_app(world, settings), port=args.port) as server:
        sys.stdout.write(f"QuickBooks simulator listening on {server.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            write_ready_file(args.ready_file, server.url)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
