"""Serve a generated world's phone log over the Twilio REST API until SIGTERM/SIGINT.

    python -m simulators.twilio --seed 7 --persons 400 --port 8766 \\
        [--account-sid AC...] [--auth-token TOKEN] [--rps 50] [--ready-file PATH]

Prints one line with the base URL once the server accepts connections, and writes the URL to
``--ready-file`` (atomically) for scripts that wait on it. API paths are under
``{url}/2010-04-01/Accounts/{AccountSid}``; ``GET {url}/_sim/numbers`` lists the main numbers.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.twilio.app import TwilioSimSettings, create_app
from simulators.world import WorldSpec


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = TwilioSimSettings()
    parser = argparse.ArgumentParser(prog="python -m simulators.twilio", description=__doc__)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--persons", type=int, default=WorldSpec.n_persons)
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument(
        "--rps", type=float, default=0, help="requests per second per account; 0 = unthrottled"
    )
    parser.add_argument("--burst", type=float, default=defaults.throttle_burst)
    parser.add_argument("--account-sid", default=defaults.account_sid)
    parser.add_argument("--auth-token", default=defaults.auth_token)
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
    settings = TwilioSimSettings(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        requests_per_second=args.rps or None,
        throttle_burst=args.burst,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with serve_in_thread(create_app(world, settings), port=args.port) as server:
        sys.stdout.write(f"Twilio simulator listening on {server.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            _write_ready_file(args.ready_file, server.url)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
