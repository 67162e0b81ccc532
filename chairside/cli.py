"""The `chairside` command.

    chairside review list [--limit N]          the identity review queue, best candidates first
    chairside review link ENQUIRY PATIENT       the enquiry is that patient
    chairside review no-match ENQUIRY           the enquiry is none of them (a new patient)
    chairside review not-same KEY PATIENT       an enquiry or patient record is not that patient
    chairside review merge PATIENT PATIENT      two patient records are one person
    chairside report [--out FILE] [--database FILE]
                                                the HTML report (funnel, abandonment, missed-call
                                                recovery, reconciliation exceptions, freshness)
    chairside writeback list [--state failed]   the outbox: every write, its state and last error
    chairside writeback send                    plan from the marts and send what is due now
    chairside writeback retry KEY... --reason   send failed writes again (looked up first)
    chairside writeback skip KEY... --reason    never send these writes (e.g. entered by hand)

Decisions go to the decisions file (CHAIRSIDE_DECISIONS), outside the warehouse; the next build
applies them. The queue shows people's details to the reviewer on this terminal only: nothing
is logged.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

import duckdb

from chairside import paths
from transforms.identity import decisions

QUEUE_SQL = """
    select item_kind, subject_key, subject_kind, org_location_id, candidate_rank,
           candidate_patient_key, round(match_probability, 3), explanation,
           concat_ws(' ', subject_first_name, subject_last_name), subject_birth_date,
           subject_email, subject_phone,
           concat_ws(' ', candidate_first_name, candidate_last_name), candidate_birth_date,
           candidate_email, candidate_phone, candidate_connection_id
    from identity.identity_review_queue
    order by item_kind, subject_key, candidate_rank
"""
KNOWN_KEYS_SQL = """
    select enquiry_key from identity.identity_enquiries
    union all select patient_key from identity.identity_patient_persons
"""


def _warehouse() -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(paths.warehouse_path()), read_only=True)
    except duckdb.IOException as error:
        raise SystemExit(
            f"cannot read the warehouse {paths.warehouse_path()} ({error}); is a build running?"
        ) from None


def _details(name, birth, email, phone) -> str:
    return f"{name or '-'} | born {birth or '-'} | {email or '-'} | {phone or '-'}"


def review_list(limit: int) -> None:
    with _warehouse() as con:
        rows = con.execute(QUEUE_SQL).fetchall()
    subjects: list[str] = []
    for row in rows:
        if row[1] not in subjects:
            subjects.append(row[1])
    if not subjects:
        print("The review queue is empty.")
        return
    shown = set(subjects[:limit])
    current = None
    for (kind, subject, subject_kind, location, rank, candidate, probability, why,
         s_name, s_birth, s_email, s_phone, c_name, c_birth, c_email, c_phone,
         c_connection) in rows:  # fmt: skip
        if subject not in shown:
            continue
        if subject != current:
            current = subject
            print(f"\n{kind} {subject} ({subject_kind}, location {location or 'unassigned'})")
            print(f"  {_details(s_name, s_birth, s_email, s_phone)}")
        print(f"  #{rank} patient {candidate} ({c_connection}) p={probability}")
        print(f"     {_details(c_name, c_birth, c_email, c_phone)}")
        print(f"     why: {why}")
    print(f"\n{len(shown)} of {len(subjects)} items shown.")


def review_decide(action: str, subject: str, obj: str | None, reviewer: str, note: str | None):
    decision = decisions.Decision(
        reviewer=reviewer, action=action, subject_key=subject, object_key=obj, note=note
    )
    with _warehouse() as con:
        known = {row[0] for row in con.execute(KNOWN_KEYS_SQL).fetchall()}
    unknown = [key for key in (subject, obj) if key and key not in known]
    if unknown:
        raise SystemExit(f"not an enquiry or patient key in the warehouse: {', '.join(unknown)}")
    decisions.record(paths.decisions_path(), decision)
    print(
        f"recorded {action} {subject}{' ' + obj if obj else ''} "
        f"({decision.decision_id}); the next build applies it"
    )


def writeback_command(args) -> None:
    from writeback.outbox import Outbox

    outbox = Outbox(paths.outbox_path())
    if args.action == "list":
        rows = outbox.rows(state=args.state)
        for row in rows:
            print(
                f"{row.key} {row.kind:<20} {row.target:<16} {row.state:<8} "
                f"attempts={row.attempts} remote={row.remote_id or '-'} "
                f"{row.last_error or ''}".rstrip()
            )
        print(f"{len(rows)} write(s); by kind and state: {outbox.counts()}")
        return
    if args.action == "send":
        from writeback.run import main as run_main

        raise SystemExit(run_main([]))
    act = outbox.retry if args.action == "retry" else outbox.skip
    try:
        changed = act(args.keys, args.operator, args.reason)
    except (KeyError, ValueError) as error:
        raise SystemExit(str(error).strip("'\"")) from None
    from writeback import snapshot

    snapshot.export(outbox, paths.landing_root())
    print(f"{args.action}: {len(changed)} write(s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="chairside", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    review = commands.add_parser("review", help="the patient identity review queue")
    actions = review.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="show the queue")
    listing.add_argument("--limit", type=int, default=20)
    for name, arguments in (
        ("link", ("enquiry", "patient")),
        ("no-match", ("enquiry",)),
        ("not-same", ("key", "patient")),
        ("merge", ("patient", "other_patient")),
    ):
        sub = actions.add_parser(name)
        for argument in arguments:
            sub.add_argument(argument)
        sub.add_argument("--reviewer", default=getpass.getuser())
        sub.add_argument("--note")
    report = commands.add_parser("report", help="write the HTML report")
    report.add_argument("--out", type=Path, default=None, help="default: CHAIRSIDE_REPORT")
    report.add_argument("--database", type=Path, default=None, help="default: the analysts' copy")
    writeback = commands.add_parser("writeback", help="the writeback outbox")
    wb_actions = writeback.add_subparsers(dest="action", required=True)
    wb_list = wb_actions.add_parser("list", help="show the outbox")
    wb_list.add_argument("--state", choices=["pending", "sending", "done", "failed", "skipped"])
    wb_actions.add_parser("send", help="plan and send what is due")
    for name in ("retry", "skip"):
        decide = wb_actions.add_parser(name)
        decide.add_argument("keys", nargs="+")
        decide.add_argument("--reason", required=True)
        decide.add_argument("--operator", default=getpass.getuser())
    args = parser.parse_args(argv)
    if args.command == "writeback":
        writeback_command(args)
        return
    if args.command == "report":
        from chairside import report as report_module

        out = args.out or paths.report_path()
        built = report_module.write(args.database or paths.analyst_copy_path(), out)
        print(f"wrote {out} ({len(built.sections)} sections, covering {built.period[0]} to "
              f"{built.period[1]})")  # fmt: skip
        return
    if args.action == "list":
        review_list(args.limit)
        return
    positional = [
        getattr(args, name)
        for name in ("enquiry", "key", "patient", "other_patient")
        if getattr(args, name, None)
    ]
    subject, obj = positional[0], (positional[1] if len(positional) > 1 else None)
    try:
        review_decide(args.action.replace("-", "_"), subject, obj, args.reviewer, args.note)
    except ValueError as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main(sys.argv[1:])
