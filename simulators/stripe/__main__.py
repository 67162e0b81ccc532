"""Serve a generated world's card-processor account over the Stripe API until SIGTERM/SIGINT.

    python -m simulators.stripe --seed 7 --persons 400 --port 8766 --rps 25 [--ready-file PATH]

Prints one line with the base URL once the server accepts connections, and writes the URL to
``--ready-file`` (atomically) for scripts that wait on it. API paths are under ``{url}/v1``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.stripe.app import StripeSimSettings, create_app
from simulators.world import WorldSpec


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = StripeSimSettings()
    parser = argparse.ArgumentParser(prog="python -m simulators.stripe", description=__doc__)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--persons", type=int, default=WorldSpec.n_persons)
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument(
        "--rps",
        type=float,
        default=defaults.requests_per_second,
        help="requests per second per API key; 0 disables throttling",
    )
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--ready-file", type=Path)
    return parser.parse_args(argv)


def write_ready_file(path: Path, url: str) -> None:
    # Write then rename, so a watcher never reads a half-written URL.
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(f"{url}\n")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    world = generate_world(WorldSpec(seed=args.seed, n_persons=args.persons))
    settings = StripeSimSettings(api_key=args.api_key, requests_per_second=args.rps or None)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with serve_in_thread(create_app(world, settings), port=args.port) as server:
        sys.stdout.write(f"Stripe simulator listening on {server.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            write_ready_file(args.ready_file, server.url)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
