"""Seeded, vectorised generation of the Open Dental world described in ``simulators/world.py``.

Everything is drawn with numpy from generators seeded by ``spec.seed`` and assembled into polars
frames, so the same spec gives identical tables and a million persons take seconds. Times are
handled as integer seconds of the office's naive local wall clock ("local epoch seconds"), dates
as integer days since 1970-01-01. ``generate_world`` (in ``world``) builds the whole world; the
other modules hold its building blocks: ``schemas`` (columns, keys), ``arrays`` (time and random
helpers), ``reference`` (definitions, clinics, providers, operatories, ``OfficeCtx``), ``people``
(ground-truth persons), ``patients``, ``appointments``, ``history`` (an office's appointment
history), ``ledger`` (payments, paysplits, adjustments) and ``commlogs``. The names re-exported
here are the ones ``simulators.evolve`` uses, so rows created while the world runs look like
generated ones.
"""

from simulators.generate.appointments import (
    COMPLETE,
    HYGIENE,
    NEW_PATIENT,
    TREATMENT,
    Appts,
    appointment_rows,
    confirmation_time,
    new_appointments,
    visit_charges,
    visit_times,
)
from simulators.generate.arrays import (
    DAY,
    HOUR,
    MINUTE,
    cents,
    choose,
    concat,
    local_seconds,
    money,
    pick,
    seconds_of,
    ts,
)
from simulators.generate.commlogs import (
    BALANCE_CALL,
    CANCEL_CALL,
    CONFIRM_REPLY,
    INSURANCE,
    MISC,
    MISSED_CALL,
    RECALL,
    REMINDER,
    REMINDER_BOTH,
    STATEMENT,
    build_commlogs,
    reminder_time,
)
from simulators.generate.ledger import (
    LATER,
    AdjustmentDraft,
    Family,
    PaymentDraft,
    build_adjustments,
    build_payments,
    dense_rank,
    deposit_time,
    prepayments,
    signed_adjustment_cents,
    visit_adjustments,
    visit_payments,
)
from simulators.generate.patients import (
    PAT_STATUS,
    PATIENT,
    PHONE_STYLE_WEIGHTS,
    PROSPECTIVE,
    Records,
    assign_care,
    family_totals,
    format_phone,
    guarantors,
    patient_rows,
)
from simulators.generate.people import make_persons, phone_salt
from simulators.generate.reference import office_context
from simulators.generate.schemas import DTIME, PRIMARY_KEYS, SCHEMAS, table_frame
from simulators.generate.world import generate_world

__all__ = [
    "BALANCE_CALL",
    "CANCEL_CALL",
    "COMPLETE",
    "CONFIRM_REPLY",
    "DAY",
    "DTIME",
    "HOUR",
    "HYGIENE",
    "INSURANCE",
    "LATER",
    "MINUTE",
    "MISC",
    "MISSED_CALL",
    "NEW_PATIENT",
    "PATIENT",
    "PAT_STATUS",
    "PHONE_STYLE_WEIGHTS",
    "PRIMARY_KEYS",
    "PROSPECTIVE",
    "RECALL",
    "REMINDER",
    "REMINDER_BOTH",
    "SCHEMAS",
    "STATEMENT",
    "TREATMENT",
    "AdjustmentDraft",
    "Appts",
    "Family",
    "PaymentDraft",
    "Records",
    "appointment_rows",
    "assign_care",
    "build_adjustments",
    "build_commlogs",
    "build_payments",
    "cents",
    "choose",
    "concat",
    "confirmation_time",
    "dense_rank",
    "deposit_time",
    "family_totals",
    "format_phone",
    "generate_world",
    "guarantors",
    "local_seconds",
    "make_persons",
    "money",
    "new_appointments",
    "office_context",
    "patient_rows",
    "phone_salt",
    "pick",
    "prepayments",
    "reminder_time",
    "seconds_of",
    "signed_adjustment_cents",
    "table_frame",
    "ts",
    "visit_adjustments",
    "visit_charges",
    "visit_payments",
    "visit_times",
]
