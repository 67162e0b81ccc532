"""Serve a generated world's CareStack accounts until SIGTERM/SIGINT.

    python -m simulators.carestack --seed 7 --persons 400 --port 8768 \\
        [--auth-mode headers|oauth_password] [--page-size 100] [--rps 10] [--ready-file PATH]

Prints one line with the base URL once the server accepts connections, and writes the URL to
``--ready-file`` (atomically) for scripts that wait on it. API paths are under
``{url}/api/v1.0``; the OAuth token endpoint is ``{url}/connect/token`` (identity_url = url).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.carestack.app import CareStackSimSettings, create_app
from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.world import WorldSpec


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = CareStackSimSettings()
    parser = argparse.ArgumentParser(prog="python -m simulators.carestack", description=__doc__)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--persons", type=int, default=WorldSpec.n_persons)
    parser.add_argument("--port", type=int, default=8768, help="0 picks a free port")
    parser.add_argument(
        "--auth-mode", choices=("headers", "oauth_password"), default=defaults.auth_mode
    )
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument(
        "--rps", type=float, default=0, help="requests per second per account; 0 = unthrottled"
    )
    parser.add_argument("--burst", type=float, default=defaults.throttle_burst)
    parser.add_argument("--vendor-key", default=defaults.vendor_key)
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
    settings = CareStackSimSettings(
        vendor_key=args.vendor_key,
        auth_mode=args.auth_mode,
        page_size=args.page_size,
        requests_per_second=args.rps or None,
        throttle_burst=args.burst,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with serve_in_thread(create_app(world, settings), port=args.port) as server:
        sys.stdout.write(f"CareStack simulator listening on {server.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            _write_ready_file(args.ready_file, server.url)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
