"""Where things live. Each location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).resolve() if value else default


def config_path() -> Path:
    return _path("CHAIRSIDE_CONFIG", REPO_ROOT / "config" / "demo_org.yaml")


def landing_root() -> Path:
    return _path("CHAIRSIDE_LANDING", REPO_ROOT / "var" / "landing")


def warehouse_path() -> Path:
    return _path("CHAIRSIDE_WAREHOUSE", REPO_ROOT / "var" / "warehouse" / "chairside.duckdb")


def decisions_path() -> Path:
    """Review decisions on patient identity (transforms/identity/decisions.py): outside the
    warehouse, so rebuilding the warehouse never loses one."""
    return _path("CHAIRSIDE_DECISIONS", REPO_ROOT / "var" / "decisions" / "identity.jsonl")


def outbox_path() -> Path:
    """The writeback outbox (writeback/outbox.py): outside the warehouse, so a rebuild never
    forgets what was already written to a vendor."""
    return _path("CHAIRSIDE_OUTBOX", REPO_ROOT / "var" / "writeback" / "outbox.sqlite")


def analyst_copy_path() -> Path:
    """The read-only copy of the marts analysts query (chairside/analyst_copy.py): beside the
    warehouse unless CHAIRSIDE_ANALYST_COPY moves it."""
    return _path("CHAIRSIDE_ANALYST_COPY", warehouse_path().with_name("analyst.duckdb"))


def report_path() -> Path:
    """Where `chairside report` (and the Dagster report asset) write the HTML report."""
    return _path("CHAIRSIDE_REPORT", analyst_copy_path().with_name("chairside-report.html"))
