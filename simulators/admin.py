"""The ``/_sim`` admin endpoints every simulator shares (loopback clients only, no auth):
script faults, advance the world, export the truth, read request counts, check health.

A simulator adds its own extras (expire tokens, add a status...) to the router it gets back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from simulators.faults import FaultSet
from simulators.gate import RequestStats
from simulators.world import World

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class AdvanceRequest(BaseModel):
    minutes: float
    seed: int | None = None


class ExportRequest(BaseModel):
    dir: str


def _loopback_only(request: Request) -> None:
    if request.client is None or request.client.host not in _LOOPBACK:
        raise HTTPException(403, "Simulator admin endpoints answer loopback clients only.")


def frames_exporter(truth: Callable[[], dict[str, pl.DataFrame]]) -> Callable[[Path], None]:
    """An export that writes each named frame ``truth()`` returns as ``<name>.parquet``."""

    def export(directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, frame in truth().items():
            frame.write_parquet(directory / f"{name}.parquet")

    return export


def admin_router(
    world: World, faults: FaultSet, stats: RequestStats, export: Callable[[Path], None]
) -> APIRouter:
    router = APIRouter(prefix="/_sim", dependencies=[Depends(_loopback_only)])

    @router.post("/faults")
    async def add_faults(rules: list[dict[str, Any]]) -> dict[str, int]:
        try:
            faults.add(*rules)
        except (ValueError, TypeError) as error:
            raise HTTPException(400, str(error)) from None
        return {"added": len(rules)}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, bool]:
        faults.clear()
        return {"cleared": True}

    @router.post("/advance")
    async def advance(body: AdvanceRequest) -> Any:
        # Off the event loop: evolving the world can take a while.
        delta = timedelta(minutes=body.minutes)
        return await asyncio.to_thread(world.advance, delta, seed=body.seed)

    @router.post("/export")
    async def export_truth(body: ExportRequest) -> dict[str, str]:
        await asyncio.to_thread(export, Path(body.dir))
        return {"dir": body.dir}

    @router.get("/stats")
    async def request_stats() -> dict[str, Any]:
        return {"requests": stats.snapshot()}

    @router.get("/health")
    async def health() -> dict[str, str]:
        with world.lock:
            now = world.now_utc
        return {"status": "ok", "now_utc": now.isoformat()}

    return router
