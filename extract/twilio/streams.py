"""What we read from Twilio, and how each list is read incrementally.

Both lists are account-wide, newest first, paged by ``next_page_uri`` (its ``PageToken`` names
the last record served, so records arriving mid-sync never shift unread pages), and filtered by a
time with an inclusive lower bound: ``StartTime>=`` for calls, ``DateSent>=`` for messages.

A record keeps changing after it first appears: a call rings, is answered, ends and is priced;
an outbound text is queued, sent, then delivered or not. Its start (or send) time never changes.
So each run reads everything that started after ``cursor - overlap``, where the cursor is the
latest start seen by the last *completed* run (see ``connector._next_cursor`` for why that is
safe), and staging keeps the newest version of each SID.
"""

from __future__ import annotations

from dataclasses import dataclass

from extract.twilio import contracts


@dataclass(frozen=True)
class Stream:
    entity: str
    path: str  # after /2010-04-01/Accounts/{AccountSid}
    list_key: str  # where the page's records are in the response body
    time_field: str  # the record's never-changing time the filter and cursor use
    filter_param: str  # the inclusive lower bound: "StartTime>" is sent as StartTime>=...
    contract: type[contracts._Record]


STREAMS: dict[str, Stream] = {
    s.entity: s
    for s in (
        Stream("calls", "/Calls.json", "calls", "start_time", "StartTime>", contracts.Call),
        Stream(
            "messages", "/Messages.json", "messages", "date_sent", "DateSent>", contracts.Message
        ),
    )
}

ENTITIES: tuple[str, ...] = tuple(STREAMS)
