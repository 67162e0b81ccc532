"""Writeback in Dagster: the outbox as an asset downstream of the writeback marts, its failures
as an asset check, a sensor for instant writes, a daily schedule, and an operator job to retry
or skip failed writes. The work itself is plain Python (writeback/)."""

import dagster as dg

from chairside import paths
from chairside.config import Organisation, load_organisation
from writeback import snapshot
from writeback.outbox import Outbox
from writeback.run import quickbooks_mapping_problems, run

WRITEBACK_MARTS = ("wb_payments", "wb_text_replies", "wb_call_summaries", "wb_payout_deposit_lines")
OUTBOX_KEY = dg.AssetKey(["writeback", "outbox"])


def _failures(outbox: Outbox) -> list[str]:
    # Ids and vendor reasons only: a write's payload (patient ids, amounts) stays in the outbox.
    return [
        f"{row.key} {row.kind} -> {row.target}: {row.last_error}"
        for row in outbox.rows(state="failed")
    ]


def build_writeback_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=OUTBOX_KEY,
        group_name="writeback",
        deps=[dg.AssetKey(["marts", name]) for name in WRITEBACK_MARTS],
        pool="writeback",
        check_specs=[
            dg.AssetCheckSpec("no_failed_writes", asset=OUTBOX_KEY),
            dg.AssetCheckSpec(
                "quickbooks_mapping_valid",
                asset=OUTBOX_KEY,
                description="Every account, class and department writeback.quickbooks names "
                "exists in the company's live chart (passes when QuickBooks writeback is off).",
            ),
        ],
        description="Plans the writes the writeback settings ask for (PMS payments, appointment "
        "confirmations/cancellations, call commlogs, QuickBooks deposits) into the outbox and "
        "sends the due ones, exactly once (writeback/).",
    )
    def writeback_outbox(context: dg.AssetExecutionContext):
        organisation = load_organisation(paths.config_path())
        outbox = Outbox(paths.outbox_path())
        mapping = quickbooks_mapping_problems(organisation, paths.landing_root())
        done = run(organisation, outbox, paths.analyst_copy_path(), paths.landing_root())
        reports = done.deliveries
        for report in reports:
            context.log.info(f"writeback {report.target}: {report.as_metadata()}")
        failures = _failures(outbox)
        counts = outbox.counts()
        yield dg.MaterializeResult(
            metadata={
                **{f"planned_{k}": v for k, v in done.planned.items()},
                "sent": sum(r.sent for r in reports),
                "found_already_written": sum(r.found for r in reports),
                "failed_total": len(failures),
                "by_kind_and_state": dg.MetadataValue.json(counts),
            }
        )
        yield dg.AssetCheckResult(
            check_name="no_failed_writes",
            passed=not failures,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "; ".join(failures[:20])
                + (f" (and {len(failures) - 20} more)" if len(failures) > 20 else "")
                if failures
                else "no failed writes"
            ),
            metadata={"failed": len(failures)},
        )
        yield dg.AssetCheckResult(
            check_name="quickbooks_mapping_valid",
            passed=not mapping,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(mapping) or "every mapped name resolves (or QuickBooks is off)",
        )

    return writeback_outbox


def build_writeback_job(asset: dg.AssetsDefinition) -> dg.JobDefinition:
    return dg.define_asset_job("writeback_job", selection=[asset.key])


def build_writeback_sensor(job: dg.JobDefinition) -> dg.SensorDefinition:
    """Instant writes: a writeback run within a minute of a build that refreshed the writeback
    marts (i.e. of the payment or reply reaching the warehouse). The cursor is the time of the
    newest materialization seen. Stopped by default: turning it on starts vendor writes."""

    @dg.sensor(
        name="writeback_after_build",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Runs writeback_job after each build of the writeback marts.",
    )
    def writeback_after_build(context: dg.SensorEvaluationContext):
        newest = max(
            (
                event.timestamp
                for name in WRITEBACK_MARTS
                if (event := context.instance.get_latest_materialization_event(
                    dg.AssetKey(["marts", name])
                ))
            ),
            default=0,
        )  # fmt: skip
        if newest <= float(context.cursor or 0):
            return dg.SkipReason("no new build of the writeback marts")
        context.update_cursor(str(newest))
        return dg.RunRequest(run_key=f"writeback-{newest}")

    return writeback_after_build


def build_writeback_schedule(
    organisation: Organisation, job: dg.JobDefinition
) -> dg.ScheduleDefinition:
    hour, minute = organisation.writeback.daily_at.split(":")
    return dg.ScheduleDefinition(
        name="daily_writeback",
        job=job,
        cron_schedule=f"{int(minute)} {int(hour)} * * *",
        execution_timezone=organisation.sync.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Sends the daily writes (writeback.daily_at) and retries pending ones.",
    )


class OperatorDecision(dg.Config):
    action: str  # "retry" or "skip"
    keys: list[str]  # writeback keys (fct_writebacks.writeback_key, or the asset check text)
    operator: str  # who decided: kept in the outbox's audit trail
    reason: str = ""


@dg.op
def apply_operator_decision(context: dg.OpExecutionContext, config: OperatorDecision) -> None:
    outbox = Outbox(paths.outbox_path())
    if config.action not in ("retry", "skip"):
        raise dg.Failure(f"action must be 'retry' or 'skip', not {config.action!r}")
    act = outbox.retry if config.action == "retry" else outbox.skip
    try:
        changed = act(config.keys, config.operator, config.reason or None)
    except (KeyError, ValueError) as error:  # an unknown key, or a write in the wrong state
        raise dg.Failure(str(error).strip("'\"")) from None
    snapshot.export(outbox, paths.landing_root())
    context.log.info(f"{config.action}: {len(changed)} write(s) by {config.operator}")


@dg.job(
    name="writeback_operator",
    description="Retry (send again, looking the record up first) or skip failed writebacks.",
)
def writeback_operator():
    apply_operator_decision()
