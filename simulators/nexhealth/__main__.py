"""Serve a generated world's NexHealth offices over the NexHealth API until SIGTERM/SIGINT.

    python -m simulators.nexhealth --seed 7 --persons 400 --port 8766 --rps 100 \\
        [--api-key KEY] [--token-ttl 3600] [--ready-file PATH]

Prints one line with the base URL once the server accepts connections, and writes the URL to
``--ready-file`` (atomically) for scripts that wait on it. API paths are at the root
(``{url}/authenticates``, ``{url}/patients``, ...), admin endpoints under ``{url}/_sim``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.generate import generate_world
from simulators.nexhealth.app import DEFAULT_API_KEY, NexHealthSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.world import WorldSpec


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = NexHealthSimSettings()
    parser = argparse.ArgumentParser(prog="python -m simulators.nexhealth", description=__doc__)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--persons", type=int, default=WorldSpec.n_persons)
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument(
        "--rps",
        type=float,
        default=defaults.requests_per_second,
        help="requests per second per API key; 0 disables throttling",
    )
    parser.add_argument(
        "--appointments-rps",
        type=float,
        default=defaults.appointments_requests_per_second,
        help="GET /appointments requests per second per API key; 0 disables",
    )
    parser.add_argument("--burst", type=float, default=defaults.throttle_burst)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--token-ttl", type=float, default=defaults.token_ttl_s, help="seconds")
    parser.add_argument("--ready-file", type=Path)
    return parser.parse_args(argv)


def _write_ready_file(path: Path, url: str) -> None:
    # Write then rename, so a watcher never reads a half-written URL.
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(f"{url}\n")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    world = generate_world(WorldSpec(seed=args.seed, n_persons=args.persons))
    settings = NexHealthSimSettings(
        api_keys={args.api_key: None},
        token_ttl_s=args.token_ttl,
        requests_per_second=args.rps or None,
        appointments_requests_per_second=args.appointments_rps or None,
        throttle_burst=args.burst,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with serve_in_thread(create_app(world, settings), port=args.port) as server:
        sys.stdout.write(f"NexHealth simulator listening on {server.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            _write_ready_file(args.ready_file, server.url)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
