"""The group's phone system, derived from the world: call legs, text messages and their truth.

The world holds no calls. ``derive(world, settings)`` is a pure function of the world's tables:
every office (whatever its PMS) has a main number per clinic, and callers ring it

- around appointment activity: a share of the appointments entered during opening hours were
  booked on an answered call (new patients call from a number the office does not know yet);
  commlogs of phone calls (a patient cancelling, the office leaving a message about a missed
  visit or calling about a balance) are calls too;
- at random through the day: existing patients, and prospects from unknown numbers.

Each inbound session follows one phone flow: a menu (IVR), then the ring group (one child
``outbound-dial`` leg per desk phone, ``ring_timeout_s``), then voicemail. Its true outcome is
answered, missed (children no-answer/busy/failed), voicemail, abandoned while ringing, a short
abandon (hung up within ``short_abandon_s`` of ringing) or abandoned in the menu (no child leg).
The parent ``inbound`` leg is ``completed`` whatever happened (Twilio answered it with TwiML).
Unanswered sessions get a call-to-text (an ``outbound-api`` SMS seconds later, undelivered to
landlines), sometimes a patient reply and a staff reply, and then a redial by the caller, an
``outbound-api`` callback (within an hour, within a day) or nothing.

Appointment reminders (``reminder_rate``, off by default): the practice texts patients it may
text about a visit some days ahead (``reminder`` messages from the clinic's line); a share
answer from their phone (``reminder_reply``) to confirm, to cancel, or with something that is
neither. The truth names the appointment and patient as the office's PMS serves them.

Every draw is seeded by the session's stable id (the day and slot of a random call, the AptNum
or CommlogNum of an anchored one), and SIDs are hashes of it, so nothing already derived
changes when the world advances: new sessions appear, and what the clock has not reached yet
(a call still ringing, a callback due tomorrow) is cut off by ``wire`` at the current time.
Times are UTC epoch seconds.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from simulators.carestack import wire as carestack_wire
from simulators.nexhealth.data import LOCATION_ID_BASE, nex_id
from simulators.twilio.records import (
    Caller,
    Leg,
    Line,
    Message,
    PhoneLog,
    PhoneSettings,
    ReminderRef,
    Session,
    sid,
)
from simulators.twilio.sessions import OfficeLog
from simulators.world import World

__all__ = [
    "Caller",
    "Leg",
    "Line",
    "Message",
    "PhoneLog",
    "PhoneSettings",
    "ReminderRef",
    "Session",
    "derive",
    "lines",
    "lines_frame",
    "pms_id_offsets",
    "sid",
]

# Main numbers use the fictional 555-01XX range, in area codes no household phone uses.
OFFICE_AREA_CODES = ("201", "410", "617", "702", "206", "404", "512", "919", "305", "615")
# The world tables the log is derived from (a change to any of them re-derives it).
WORLD_TABLES = ("patients", "appointments", "commlogs", "truth_patient_links", "truth_persons")


def lines(world: World) -> list[Line]:
    """The main number of every office (and of every clinic, for offices with clinics)."""
    seed = world.spec.seed
    result = []
    for index, office in enumerate(world.spec.offices):
        clinics = list(enumerate(office.clinics, start=1)) or [(0, "")]
        area = OFFICE_AREA_CODES[index % len(OFFICE_AREA_CODES)]
        for clinic_num, clinic in clinics:
            line = 100 + 10 * (index // len(OFFICE_AREA_CODES)) + clinic_num
            result.append(
                Line(
                    office=office.key,
                    clinic_num=clinic_num,
                    name=f"{office.name} - {clinic}" if clinic else office.name,
                    number=f"+1{area}5550{line:03d}",
                    phone_number_sid=sid("PN", seed, office.key, clinic_num),
                    timezone=office.timezone,
                )
            )
    return result


def lines_frame(world: World) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "office": line.office,
                "clinic_num": line.clinic_num,
                "name": line.name,
                "phone_number": line.number,
                "phone_number_sid": line.phone_number_sid,
            }
            for line in lines(world)
        ]
    )


def pms_id_offsets(world: World) -> dict[str, int]:
    """Office -> what its PMS simulator adds to a world key (PatNum, AptNum) to make its id:
    nothing for Open Dental, the account slot for CareStack, the location for NexHealth."""
    slots = {
        office.key: slot
        for account in carestack_wire.accounts(world).values()
        for slot, office in account.slots()
    }
    offsets = {}
    for index, office in enumerate(world.spec.offices):
        if office.pms == "carestack":
            offsets[office.key] = slots[office.key] * carestack_wire.ID_STRIDE
        elif office.pms == "nexhealth":
            offsets[office.key] = nex_id(LOCATION_ID_BASE + index, 0)
        else:
            offsets[office.key] = 0
    return offsets


def derive(world: World, settings: PhoneSettings | None = None) -> PhoneLog:
    """Every call leg and message of the phone log up to the end of the world's local day."""
    settings = settings or PhoneSettings()
    with world.lock:
        now = world.now_utc
        tables = {name: world.tables[name] for name in WORLD_TABLES}
    log = PhoneLog(lines(world))
    since = int((world.spec.now_utc - timedelta(days=settings.history_days)).timestamp())
    offsets = pms_id_offsets(world)
    for office in world.spec.offices:
        office_lines = [line for line in log.lines if line.office == office.key]
        OfficeLog(
            world.spec.seed, settings, office, office_lines, tables, log, offsets[office.key]
        ).build(since, int(now.timestamp()))
    return log
