"""iCalendar (.ics) output for meeting invitations (iTIP, RFC 5546) and subscribable feeds.

Pure functions: the caller loads meetings from the database and maps them to `CalendarEvent`.
Times are always written as Europe/Stockholm wall-clock time with a TZID and a matching VTIMEZONE,
so a meeting at 18:00 stays at 18:00 in every client, also across a daylight-saving change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final, Literal
from zoneinfo import ZoneInfo

import icalendar
import msgspec

STOCKHOLM: Final = ZoneInfo("Europe/Stockholm")
STOCKHOLM_TZID: Final = "Europe/Stockholm"

# Years (inclusive) the fallback VTIMEZONE always covers; see _add_stockholm_timezone.
VTIMEZONE_FIRST_YEAR: Final = 2020
VTIMEZONE_LAST_YEAR: Final = 2045

PRODID: Final = "-//Tillsammans mot natdroger//TMN//SV"

_CONTROL_CHARS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

InvitationMethod = Literal["REQUEST", "CANCEL"]


class CalendarEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One meeting as the calendar sees it."""

    uid: str  # stable per meeting, e.g. "meeting-<uuid>@tmn.example"
    sequence: int  # raised by the caller on every change sent out (RFC 5546)
    title: str
    starts_at: datetime  # aware (any zone); written as local Europe/Stockholm time with TZID
    ends_at: datetime
    location: str | None = None
    online_url: str | None = None  # becomes URL (and is mentioned in DESCRIPTION)
    description: str = ""
    organizer_name: str | None = None
    organizer_email: str | None = None
    attendee_email: str | None = None  # the invitation's recipient (ATTENDEE;RSVP=TRUE)
    attendee_name: str | None = None
    cancelled: bool = False
    stamp: datetime  # aware; DTSTAMP and LAST-MODIFIED (UTC)


def invitation_ics(event: CalendarEvent, *, method: InvitationMethod) -> bytes:
    """An iTIP message for one recipient: METHOD:REQUEST to invite/update, METHOD:CANCEL to withdraw.

    Clients match a CANCEL (or an update) to the original by UID and only apply it when its
    SEQUENCE is at least the one they hold, so the caller must raise `sequence` for every change
    it sends out, the cancellation included.
    """
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported iTIP method: {method!r}")
    _validate(event)
    calendar = _new_calendar(method)
    calendar.add_component(_vevent(event, cancelled=method == "CANCEL" or event.cancelled, invitation=True))
    _add_stockholm_timezone(calendar, [event])
    return _serialize(calendar)


def feed_ics(name: str, events: Sequence[CalendarEvent]) -> bytes:
    """A METHOD:PUBLISH calendar for subscription (webcal), without per-recipient ATTENDEE lines.

    Cancelled meetings stay in the feed with STATUS:CANCELLED so subscribed clients drop them.
    The Europe/Stockholm VTIMEZONE is always included, also for an empty feed: RFC 5545 requires
    at least one component in a VCALENDAR, and it matches the X-WR-TIMEZONE we announce.
    """
    seen: set[str] = set()
    for event in events:
        _validate(event)
        # Two VEVENTs with the same UID (and no RECURRENCE-ID) are invalid and clients
        # would silently keep just one of them.
        if event.uid in seen:
            raise ValueError(f"duplicate UID in feed: {event.uid!r}")
        seen.add(event.uid)

    calendar = _new_calendar("PUBLISH")
    # NAME is the RFC 7986 standard; X-WR-CALNAME/X-WR-TIMEZONE are what Apple, Google and
    # Outlook actually read for subscribed calendars.
    calendar.add("NAME", _clean(name))
    calendar.add("X-WR-CALNAME", _clean(name))
    calendar.add("X-WR-TIMEZONE", STOCKHOLM_TZID)
    for event in events:
        calendar.add_component(_vevent(event, cancelled=event.cancelled, invitation=False))
    _add_stockholm_timezone(calendar, events)
    return _serialize(calendar)


def _new_calendar(method: str) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", method)
    return calendar


def _serialize(calendar: icalendar.Calendar) -> bytes:
    # to_ical() is unannotated upstream; it yields CRLF lines folded at 75 octets.
    ics: bytes = calendar.to_ical()
    return ics


def _validate(event: CalendarEvent) -> None:
    # A naive datetime has no defined instant; guessing a zone would silently move meetings.
    for field in ("starts_at", "ends_at", "stamp"):
        value: datetime = getattr(event, field)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"CalendarEvent.{field} must be timezone-aware, got naive {value!r}")
    # RFC 5545 3.6.1: DTEND must be later than DTSTART.
    if event.ends_at <= event.starts_at:
        raise ValueError(f"CalendarEvent.ends_at must be after starts_at (uid {event.uid!r})")
    if event.sequence < 0:
        raise ValueError(f"CalendarEvent.sequence must be >= 0, got {event.sequence}")
    if not event.uid:
        raise ValueError("CalendarEvent.uid must not be empty")


def _vevent(event: CalendarEvent, *, cancelled: bool, invitation: bool) -> icalendar.Event:
    vevent = icalendar.Event()
    vevent.add("UID", event.uid)
    vevent.add("SEQUENCE", event.sequence)
    vevent.add("SUMMARY", _clean(event.title))
    vevent.add("DTSTART", _written_time(event.starts_at))
    vevent.add("DTEND", _written_time(event.ends_at))
    # icalendar converts DTSTAMP and LAST-MODIFIED to UTC itself, as RFC 5545 requires.
    vevent.add("DTSTAMP", event.stamp)
    vevent.add("LAST-MODIFIED", event.stamp)
    if event.location:
        vevent.add("LOCATION", _clean(event.location))
    if event.online_url:
        vevent.add("URL", event.online_url)
    description = _description(event)
    if description:
        vevent.add("DESCRIPTION", description)
    vevent.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    if event.organizer_email:
        vevent.add("ORGANIZER", _cal_address(event.organizer_email, event.organizer_name))
    if invitation and event.attendee_email:
        attendee = _cal_address(event.attendee_email, event.attendee_name)
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        vevent.add("ATTENDEE", attendee)
    return vevent


def _written_time(moment: datetime) -> datetime:
    # A zoneinfo datetime makes icalendar write TZID=Europe/Stockholm with the local wall time.
    local = moment.astimezone(STOCKHOLM)
    if local.fold and local.replace(fold=0).utcoffset() != local.utcoffset():
        # The second 02:00-02:59 of the night summer time ends: RFC 5545 3.3.5 reads an ambiguous
        # local time as its first occurrence, an hour early, so only UTC can say this instant.
        return moment.astimezone(UTC)
    return local


def _description(event: CalendarEvent) -> str:
    # Many clients hide or do not render URL, so the link is repeated in the text people read.
    text = _clean(event.description).strip()
    if event.online_url and event.online_url not in text:
        link = f"Anslut digitalt: {event.online_url}"
        text = f"{text}\n\n{link}" if text else link
    return text


def _clean(text: str) -> str:
    # RFC 5545 TEXT allows no control characters except tab; icalendar escapes line breaks itself
    # but would write e.g. NUL verbatim, which breaks strict parsers.
    return _CONTROL_CHARS.sub("", text)


def _cal_address(email: str, name: str | None) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{email}")
    if name:
        # icalendar quotes the parameter and applies RFC 6868 escaping for quotes in names.
        address.params["CN"] = _clean(name)
    return address


def _add_stockholm_timezone(calendar: icalendar.Calendar, events: Sequence[CalendarEvent]) -> None:
    if _rules_match_zoneinfo(events):
        # Before the VEVENTs, where every client expects it.
        calendar.subcomponents.insert(0, _stockholm_vtimezone())
    else:
        # tzdata no longer matches the EU rule for these dates (the rule changed, or a meeting
        # predates 1996): fall back to icalendar's VTIMEZONE, built from zoneinfo. That form lists
        # every transition (RDATE), which Outlook ignores, but it is correct per RFC 5545.
        # It covers a fixed span, widened to the events, because the library default ends in
        # 2038 and one TZID should not get a different definition in every message.
        first_year = min(VTIMEZONE_FIRST_YEAR, *(e.starts_at.astimezone(STOCKHOLM).year for e in events))
        last_year = max(VTIMEZONE_LAST_YEAR, *(e.ends_at.astimezone(STOCKHOLM).year for e in events))
        calendar.add_missing_timezones(first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1))
    # add_missing_timezones silently skips zones it cannot build (e.g. no tzdata); a DTSTART
    # with a TZID but no VTIMEZONE would be shown at the wrong time, so fail loudly instead.
    if calendar.get_missing_tzids() or [tz.tz_name for tz in calendar.timezones] != [STOCKHOLM_TZID]:
        raise RuntimeError("could not build the Europe/Stockholm VTIMEZONE (is tzdata installed?)")


def _stockholm_vtimezone() -> icalendar.Timezone:
    """Europe/Stockholm as the recurring EU rule (in force since 1996), like Google and Apple send it.

    Not icalendar's generated VTIMEZONE: that lists each transition as RDATE, but Outlook reads only
    DTSTART/RRULE/TZOFFSET* of a VTIMEZONE (MS-STANOICAL 2.2.47), so summer meetings end up an hour
    off there; vobject even keeps only the first value of an RDATE list. An RRULE also never runs
    out, unlike a list. `_rules_match_zoneinfo` checks it against tzdata before it is used.
    """
    daylight = icalendar.TimezoneDaylight()
    daylight.add("TZNAME", "CEST")
    daylight.add("TZOFFSETFROM", timedelta(hours=1))
    daylight.add("TZOFFSETTO", timedelta(hours=2))
    # Observance onsets are floating local time by definition (RFC 5545 3.6.5), hence naive.
    daylight.add("DTSTART", datetime(1996, 3, 31, 2, 0))  # noqa: DTZ001 - last Sunday of March, 02:00
    daylight.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": 3, "BYDAY": "-1SU"})
    standard = icalendar.TimezoneStandard()
    standard.add("TZNAME", "CET")
    standard.add("TZOFFSETFROM", timedelta(hours=2))
    standard.add("TZOFFSETTO", timedelta(hours=1))
    standard.add("DTSTART", datetime(1996, 10, 27, 3, 0))  # noqa: DTZ001 - last Sunday of October, 03:00
    standard.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": 10, "BYDAY": "-1SU"})
    timezone = icalendar.Timezone()
    timezone.add("TZID", STOCKHOLM_TZID)
    timezone.add_component(daylight)
    timezone.add_component(standard)
    return timezone


@functools.cache
def _stockholm_rules() -> tzinfo:
    # The tzinfo a client derives from our VTIMEZONE (icalendar evaluates it with dateutil).
    rules: tzinfo = _stockholm_vtimezone().to_tz(lookup_tzid=False)
    return rules


def _rules_match_zoneinfo(events: Sequence[CalendarEvent]) -> bool:
    # The wall time we write, read back through the VTIMEZONE, must give zoneinfo's UTC offset;
    # otherwise a client would place the meeting at another instant.
    rules = _stockholm_rules()
    for event in events:
        for moment in (event.starts_at, event.ends_at):
            local = _written_time(moment)
            if local.tzinfo is STOCKHOLM and local.replace(tzinfo=rules).utcoffset() != local.utcoffset():
                return False
    return True
