"""Matching CareStack locations to the organisation's locations, for a person to confirm.

A CareStack account lists its own locations (``GET locations``); the organisation config lists
the group's. Each CareStack location ends up in exactly one state:

- ``confirmed``: a config location names it (``Location.pms_location_id``);
- ``exact``: exactly one unconfirmed config location has the same name once case, punctuation
  and "&"/"and" are ignored: the same location, matched;
- ``proposed``: the closest unconfirmed config location scores at least ``PROPOSE_AT``. It is
  only a proposal: ``location_id`` stays empty until a person sets ``pms_location_id``;
- ``unmatched``: nothing comes close.

Config locations of the connection that nothing matched or proposed come out as ``missing``
(their ``pms_location_id`` names no CareStack location, or no CareStack location resembles them).
Location names are business names, not PHI: they may appear in logs and metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from chairside.config import Location

PROPOSE_AT = 0.5
# Words nearly every practice name has: they say nothing about which practice it is.
GENERIC_WORDS = frozenset(
    {
        "the", "of", "and", "at", "dental", "dentistry", "dentist", "dentists", "family", "care",
        "center", "centre", "clinic", "office", "group", "practice", "smiles", "smile",
        "associates", "pc", "pa", "llc", "pllc", "inc", "dds", "dmd",
    }
)  # fmt: skip

Status = Literal["confirmed", "exact", "proposed", "unmatched", "missing"]


@dataclass(frozen=True)
class LocationMatch:
    status: Status
    carestack_location_id: int | None = None
    carestack_location_name: str | None = None
    # The config location this CareStack location is (confirmed or exact only).
    location_id: str | None = None
    location_name: str | None = None
    # A close config location for a person to confirm; never applied by itself.
    proposed_location_id: str | None = None
    proposed_location_name: str | None = None
    score: float | None = None

    @property
    def key(self) -> str:
        if self.carestack_location_id is not None:
            return f"carestack:{self.carestack_location_id}"
        return f"config:{self.location_id}"

    def record(self) -> dict:
        """The landed record (camelCase, like CareStack's own feeds)."""
        return {
            "matchKey": self.key,
            "status": self.status,
            "carestackLocationId": self.carestack_location_id,
            "carestackLocationName": self.carestack_location_name,
            "locationId": self.location_id,
            "locationName": self.location_name,
            "proposedLocationId": self.proposed_location_id,
            "proposedLocationName": self.proposed_location_name,
            "score": self.score,
        }


def normalise(name: str) -> str:
    text = name.casefold().replace("&", " and ")
    return " ".join(re.findall(r"[a-z0-9]+", text))


def _tokens(name: str) -> list[str]:
    words = normalise(name).split()
    return [w for w in words if w not in GENERIC_WORDS] or words


def similarity(a: str, b: str) -> float:
    """0..1: half whole-name likeness, half how well the distinctive words pair up (a typo in
    a word still counts most of it), so "Hillcrest Family Dentistry" ~ "Hilcrest Dental"."""
    whole = SequenceMatcher(None, normalise(a), normalise(b)).ratio()
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return round(whole, 3)

    def covered(xs: list[str], ys: list[str]) -> float:
        return sum(max(SequenceMatcher(None, x, y).ratio() for y in ys) for x in xs) / len(xs)

    words = (covered(ta, tb) + covered(tb, ta)) / 2
    return round((whole + words) / 2, 3)


def match_locations(
    carestack: Iterable[dict],
    configured: Sequence[Location],
    *,
    propose_at: float = PROPOSE_AT,
) -> list[LocationMatch]:
    """Match CareStack location records (``Id``, ``Name``) to one connection's config locations."""
    cs = sorted(
        ((int(r["Id"]), str(r.get("Name") or "")) for r in carestack), key=lambda item: item[0]
    )
    by_pms_id = {c.pms_location_id: c for c in configured if c.pms_location_id}
    free = [c for c in configured if not c.pms_location_id]
    results: dict[int, LocationMatch] = {}
    for cs_id, name in cs:
        location = by_pms_id.get(str(cs_id))
        if location is not None:
            results[cs_id] = _matched("confirmed", cs_id, name, location)
    for cs_id, name in cs:
        same = [c for c in free if normalise(c.name) == normalise(name)]
        twins = [n for i, n in cs if normalise(n) == normalise(name) and i not in results]
        if cs_id not in results and len(same) == 1 and len(twins) == 1:
            results[cs_id] = _matched("exact", cs_id, name, same[0], score=1.0)
            free.remove(same[0])
    pairs = sorted(
        (
            (similarity(name, c.name), cs_id, index)
            for cs_id, name in cs
            if cs_id not in results
            for index, c in enumerate(free)
        ),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    proposed: set[int] = set()
    for score, cs_id, index in pairs:
        if score < propose_at or cs_id in results or index in proposed:
            continue
        location = free[index]
        proposed.add(index)
        results[cs_id] = LocationMatch(
            "proposed", cs_id, dict(cs)[cs_id], None, None, location.id, location.name, score
        )
    matched = [results.get(cs_id) or LocationMatch("unmatched", cs_id, name) for cs_id, name in cs]
    used = {m.location_id for m in matched} | {m.proposed_location_id for m in matched}
    missing = [
        LocationMatch("missing", location_id=c.id, location_name=c.name)
        for c in configured
        if c.id not in used
    ]
    return matched + missing


def _matched(
    status: Status, cs_id: int, name: str, location: Location, score: float | None = None
) -> LocationMatch:
    return LocationMatch(status, cs_id, name, location.id, location.name, score=score)
