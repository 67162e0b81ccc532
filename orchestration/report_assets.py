"""The weekly report as an asset: rebuilt after the marts it reads, its headline figures shown
as metadata in the Dagster UI (the same numbers as the HTML page)."""

import dagster as dg

from chairside import paths
from chairside import report as report_module


def build_report_asset() -> dg.AssetsDefinition:
    @dg.asset(
        name="chairside_report",
        key_prefix="reports",
        group_name="reports",
        deps=[dg.AssetKey(["marts", name]) for name in report_module.MARTS],
        automation_condition=dg.AutomationCondition.eager(),
        description="The HTML report: funnel, abandonment, missed-call recovery, "
        "reconciliation exceptions, data freshness (chairside/report.py).",
    )
    def chairside_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        out = paths.report_path()
        built = report_module.write(paths.analyst_copy_path(), out)
        context.log.info(f"report written to {out}")
        metadata = {
            name: value for name, value in built.figures.items() if value is not None
        }  # counts and rates only: no patient data
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "period": f"{built.period[0]} to {built.period[1]}",
                "path": dg.MetadataValue.path(str(out)),
            }
        )

    return chairside_report
