"""Serve one generated world over every vendor's simulated API until SIGTERM/SIGINT.

    python -m simulators --seed 7 --persons 400 [--rps 200] [--ready-file PATH] [--clean-finance]

Each vendor gets its own loopback port. Prints one line per vendor, and writes a JSON object
``{vendor: base_url}`` to ``--ready-file`` (atomically) once every server accepts connections.
The card processor and the books carry the demo world's known reconciliation discrepancies
(``DEMO_BOOKS``, docs/reconciliation.md) unless ``--clean-finance`` is given.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from simulators.demo import DEMO_APPS
from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.world import World, WorldSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--persons", type=int, default=WorldSpec.n_persons)
    parser.add_argument("--rps", type=float, default=200.0, help="0 disables throttling")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument(
        "--clean-finance", action="store_true", help="no reconciliation discrepancies"
    )
    args = parser.parse_args(argv)
    apps = DEMO_APPS if args.clean_finance else {**DEMO_APPS, **_with_discrepancies()}

    world = generate_world(WorldSpec(seed=args.seed, n_persons=args.persons))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with ExitStack() as servers:
        urls = {}
        for vendor, build in apps.items():
            server = servers.enter_context(serve_in_thread(build(world, args.rps or None)))
            urls[vendor] = server.url
            sys.stdout.write(f"{vendor} simulator listening on {server.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            partial = args.ready_file.with_name(f"{args.ready_file.name}.partial")
            partial.write_text(json.dumps(urls))
            partial.replace(args.ready_file)  # a watcher never reads half a file
        stop.wait()
    return 0


def _with_discrepancies() -> dict[str, Callable[[World, float | None], Any]]:
    """The processor and books apps of ``DEMO_APPS``, deriving from the same discrepant settings
    (the books derive the processor too, so both must get the same processor settings)."""
    from simulators.quickbooks.app import create_app as quickbooks_app
    from simulators.quickbooks.data import DEMO_BOOKS
    from simulators.stripe.app import create_app as stripe_app

    def stripe(world: World, rps: float | None) -> Any:
        app = DEMO_APPS["stripe"](world, rps)
        return stripe_app(world, replace(app.state.settings, data=DEMO_BOOKS.stripe))

    def quickbooks(world: World, rps: float | None) -> Any:
        app = DEMO_APPS["quickbooks"](world, rps)
        return quickbooks_app(world, replace(app.state.settings, data=DEMO_BOOKS))

    return {"stripe": stripe, "quickbooks": quickbooks}


if __name__ == "__main__":
    sys.exit(main())
