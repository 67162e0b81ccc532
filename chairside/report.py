"""`chairside report`: one HTML page with what analysts and finance ask every week.

Reads the analysts' copy of the marts (never the live warehouse, so it runs while syncs and
builds do) and writes a self-contained HTML file: plotly.js is embedded, so the page opens
offline. The same headline figures (``figures``) are attached to the report's Dagster asset as
metadata. No patient details: every figure is a count, a rate or a sum.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs


@dataclass
class Section:
    title: str
    explanation: str
    figure: go.Figure | None = None
    table: pl.DataFrame | None = None


@dataclass
class Report:
    period: tuple[str, str]  # first and last day the marts cover
    freshness: pl.DataFrame  # per source system: latest extraction and source change
    sections: list[Section] = field(default_factory=list)
    figures: dict[str, float | int | None] = field(default_factory=dict)


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return con.sql(sql).pl()


# The marts the report reads (Dagster makes the report asset depend on them).
MARTS = (
    "mart_data_freshness",
    "fct_lead_journeys",
    "agg_lead_funnel",
    "fct_calls",
    "agg_calls_by_location_weekday_hour",
    "agg_missed_call_recovery_by_location_week",
    "fct_reconciliation_exceptions",
    "fct_writebacks",
)


# --- sections ----------------------------------------------------------------------------


def funnel_section(con, report: Report) -> None:
    stages = _query(
        con,
        """
        select sum(leads) as leads, sum(contacted) as contacted, sum(booked) as booked,
               sum(arrived) as arrived, sum(checked_out) as checked_out
        from marts.agg_lead_funnel
        """,
    ).row(0, named=True)
    names = ["leads", "contacted", "booked", "arrived", "checked_out"]
    counts = [int(stages[name] or 0) for name in names]
    figure = go.Figure(go.Funnel(y=[n.replace("_", " ") for n in names], x=counts))
    figure.update_layout(title="Lead funnel: journeys reaching each stage (all cohorts)")
    report.sections.append(
        Section(
            "Lead funnel",
            "Every lead (online request, or call or text from a number no patient had) and how "
            "far its journey got. Definitions: docs/lead-funnel.md.",
            figure,
        )
    )
    report.figures.update(
        {f"funnel_{name}": count for name, count in zip(names, counts, strict=True)}
    )
    report.figures["funnel_lead_to_booked"] = round(counts[2] / counts[0], 4) if counts[0] else None


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def abandonment_section(con, report: Report) -> None:
    cells = _query(
        con,
        """
        select local_weekday, local_hour, sum(offered_calls) as offered,
               sum(abandoned_calls) as abandoned, sum(short_abandons) as short_abandons,
               any_value(abandon_rate_formula) as formula
        from marts.agg_calls_by_location_weekday_hour
        group by local_weekday, local_hour order by local_weekday, local_hour
        """,
    )
    formula = cells["formula"].drop_nulls().first() or "exclude_short"
    rate = (
        (pl.col("abandoned") + pl.col("short_abandons")) / pl.col("offered")
        if formula == "include_short"
        else pl.col("abandoned") / (pl.col("offered") - pl.col("short_abandons"))
    )
    cells = cells.with_columns(rate=pl.when(pl.col("offered") > 0).then(rate * 100))
    hours = list(range(cells["local_hour"].min() or 0, (cells["local_hour"].max() or 23) + 1))
    grid = {(row["local_weekday"], row["local_hour"]): row["rate"] for row in cells.to_dicts()}
    weekdays = sorted(cells["local_weekday"].unique().to_list())
    figure = go.Figure(
        go.Heatmap(
            z=[[grid.get((day, hour)) for hour in hours] for day in weekdays],
            x=[f"{hour:02d}:00" for hour in hours],
            y=[WEEKDAYS[day % 7] if 0 <= day <= 6 else str(day) for day in weekdays],
            colorscale="Reds",
            colorbar={"title": "abandon %"},
        )
    )
    figure.update_layout(title=f"Call abandonment by weekday and hour (local time, {formula})")
    totals = cells.select(pl.col("offered", "abandoned", "short_abandons").sum()).row(0)
    offered, abandoned, short = totals
    report.figures["calls_offered"] = int(offered or 0)
    report.figures["calls_abandoned"] = int(abandoned or 0)
    denominator = (offered or 0) - (0 if formula == "include_short" else (short or 0))
    numerator = (abandoned or 0) + ((short or 0) if formula == "include_short" else 0)
    report.figures["calls_abandon_rate"] = (
        round(numerator / denominator, 4) if denominator else None
    )
    report.sections.append(
        Section(
            "Call abandonment",
            "Callers who hung up before anyone answered, as a share of calls that reached the "
            "ring group, by the location's weekday and hour. Formula and thresholds: "
            "docs/calls.md and the calls section of the organisation config.",
            figure,
        )
    )


def recovery_section(con, report: Report) -> None:
    totals = _query(
        con,
        """
        select sum(missed_callers) as missed_callers,
               sum(callbacks_within_1h) as called_back_within_1h,
               sum(callbacks_within_24h) as called_back_within_24h,
               sum(text_backs_sent) as texted_back,
               sum(text_conversations_started) as replied_to_text,
               sum(booked_within_7d) as booked_within_7_days,
               sum(new_patient_callers_lost) as new_patient_callers_lost
        from marts.agg_missed_call_recovery_by_location_week
        """,
    ).row(0, named=True)
    labels = list(totals)
    values = [int(totals[label] or 0) for label in labels]
    figure = go.Figure(go.Bar(x=[label.replace("_", " ") for label in labels], y=values))
    figure.update_layout(title="Missed-call recovery (missed callers, deduplicated per day)")
    report.figures.update(
        {f"recovery_{label}": value for label, value in zip(labels, values, strict=True)}
    )
    report.sections.append(
        Section(
            "Missed-call recovery",
            "Did we win missed callers back: callbacks within 1 and 24 hours, text-backs and "
            "replies, appointments booked within 7 days, new-patient callers lost. "
            "Definitions: docs/calls.md.",
            figure,
        )
    )


def reconciliation_section(con, report: Report) -> None:
    by_code = _query(
        con,
        """
        select code, count(*) as exceptions,
               coalesce(sum(abs(difference_amount)), 0) as amount_at_stake
        from marts.fct_reconciliation_exceptions group by code order by exceptions desc, code
        """,
    )
    figure = go.Figure(go.Bar(x=by_code["code"].to_list(), y=by_code["exceptions"].to_list()))
    figure.update_layout(title="Reconciliation exceptions by code")
    latest = _query(
        con,
        """
        select code, object_kind, object_id, object_date, expected_amount, actual_amount,
               difference_amount, detail
        from marts.fct_reconciliation_exceptions
        order by object_date desc nulls last, code limit 25
        """,
    )
    report.figures["reconciliation_exceptions"] = int(by_code["exceptions"].sum())
    report.figures.update(
        {
            f"reconciliation_{code}": int(n)
            for code, n in by_code.select("code", "exceptions").iter_rows()
        }
    )
    report.sections.append(
        Section(
            "Payout reconciliation exceptions",
            "Every processor payout, charge, books deposit and PMS card payment that does not "
            "reconcile, by code (docs/reconciliation.md); the table lists the latest 25.",
            figure,
            latest,
        )
    )


def writeback_section(con, report: Report) -> None:
    states = _query(
        con,
        """
        select kind, state, count(*) as writes
        from marts.fct_writebacks group by kind, state order by kind, state
        """,
    )
    figure = go.Figure(
        [
            go.Bar(name=state, x=part["kind"].to_list(), y=part["writes"].to_list())
            for (state,), part in states.group_by("state", maintain_order=True)
        ]
        or [go.Bar(x=[], y=[])]
    )
    figure.update_layout(title="Writebacks by kind and state", barmode="stack")
    failed = _query(
        con,
        """
        select writeback_key, kind, connection_id, source_ref, attempts, last_error,
               strftime(updated_at, '%Y-%m-%d %H:%M') as updated_utc
        from marts.fct_writebacks where needs_attention
        order by updated_at desc limit 50
        """,
    )
    for state in ("done", "pending", "failed", "skipped"):
        report.figures[f"writebacks_{state}"] = int(
            states.filter(pl.col("state") == state)["writes"].sum()
        )
    report.sections.append(
        Section(
            "Writebacks",
            "Every write to a PMS or QuickBooks (docs/writeback.md) by kind and state. Failed "
            "writes are listed with the vendor's reason: ops retry or skip them from Dagster "
            "(job writeback_operator) or with `chairside writeback retry|skip`.",
            figure,
            failed,
        )
    )


def render(report: Report, title: str) -> str:
    """The report as one self-contained HTML page."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f4f4f4}.note{color:#555}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Covers {report.period[0]} to {report.period[1]}. Generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the analysts' copy of the marts.</p>",
        "<h2>Data freshness</h2>",
        _table_html(report.freshness),
    ]
    for index, section in enumerate(report.sections):
        parts.append(f"<section id='section-{index}'><h2>{html.escape(section.title)}</h2>")
        parts.append(f"<p class='note'>{html.escape(section.explanation)}</p>")
        if section.figure is not None:
            parts.append(
                section.figure.to_html(
                    full_html=False, include_plotlyjs=False, div_id=f"chart-{index}"
                )
            )
        if section.table is not None:
            parts.append(_table_html(section.table))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _table_html(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('—' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


SECTIONS = (
    funnel_section,
    abandonment_section,
    recovery_section,
    reconciliation_section,
    writeback_section,
)


def build(database: Path) -> Report:
    """Every section's figures from the analysts' copy at ``database``."""
    with duckdb.connect(str(database), read_only=True) as con:
        freshness = _query(
            con,
            """
            select source_system, sum(row_count) as rows,
                   strftime(max(latest_source_update_at), '%Y-%m-%d %H:%M') as latest_change_utc,
                   strftime(max(latest_extracted_at), '%Y-%m-%d %H:%M') as latest_extract_utc
            from marts.mart_data_freshness group by source_system order by source_system
            """,
        )
        first, last = con.execute(
            "select least((select min(local_date) from marts.fct_calls), "
            "(select min(enquiry_at)::date from marts.fct_lead_journeys)), "
            "(select max(as_of_at)::date from marts.fct_lead_journeys)"
        ).fetchall()[0]  # fetch everything: DuckDB keeps an unfinished result busy
        report = Report(period=(str(first), str(last)), freshness=freshness)
        for section in SECTIONS:
            section(con, report)
    report.figures = {name: _plain(value) for name, value in report.figures.items()}
    return report


def _plain(value):
    """DuckDB sums arrive as Decimal: figures are plain ints and floats (Dagster metadata)."""
    if value is None or isinstance(value, int | float):
        return value
    number = float(value)
    return int(number) if number.is_integer() and "." not in str(value) else number


def write(database: Path, out: Path, title: str = "Chairside weekly report") -> Report:
    """Build the report and write it atomically to ``out``."""
    report = build(database)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(render(report, title), encoding="utf-8")
    os.replace(tmp, out)
    return report
