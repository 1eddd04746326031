"""Unit tests for service.meetings.calendar: parse the .ics back and check what clients will read."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dateutil.tz
import icalendar
import pytest
import vobject

from service.meetings.calendar import STOCKHOLM, CalendarEvent, feed_ics, invitation_ics

STAMP = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
UID = "meeting-0b9c1c1e-6f0e-4a52-9d7a-1b2c3d4e5f60@tmn.example"


def make_event(**overrides: Any) -> CalendarEvent:
    values: dict[str, Any] = {
        "uid": UID,
        "sequence": 0,
        "title": "Nätverksträff",
        "starts_at": datetime(2027, 3, 30, 18, 0, tzinfo=STOCKHOLM),
        "ends_at": datetime(2027, 3, 30, 20, 0, tzinfo=STOCKHOLM),
        "location": "Stadshuset, Örebro",
        "description": "Välkommen!",
        "organizer_name": "Åsa Öberg",
        "organizer_email": "asa@kommun.example",
        "attendee_email": "per@polisen.example",
        "attendee_name": "Per Ärlig",
        "stamp": STAMP,
    }
    values.update(overrides)
    return CalendarEvent(**values)


def parse(ics: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(ics)


def only_event(calendar: icalendar.Calendar) -> icalendar.Event:
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def test_invitation_request_headers_and_identity() -> None:
    ics = invitation_ics(make_event(sequence=3), method="REQUEST")
    calendar = parse(ics)

    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == "-//Tillsammans mot natdroger//TMN//SV"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["METHOD"]) == "REQUEST"
    event = only_event(calendar)
    assert str(event["UID"]) == UID
    assert event.decoded("SEQUENCE") == 3
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Nätverksträff"
    assert event.decoded("DTSTAMP") == STAMP
    assert event.decoded("LAST-MODIFIED") == STAMP
    # DTSTAMP/LAST-MODIFIED must be written in UTC form.
    assert b"DTSTAMP:20270301T093000Z" in ics
    assert b"LAST-MODIFIED:20270301T093000Z" in ics


def test_output_is_crlf_and_folded() -> None:
    ics = invitation_ics(make_event(description="x" * 300), method="REQUEST")
    assert ics.startswith(b"BEGIN:VCALENDAR\r\n")
    assert ics.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in ics.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in ics.split(b"\r\n"))


def test_dtstart_has_stockholm_tzid_and_local_time() -> None:
    # Input in another zone: 16:00Z is 18:00 in Stockholm summer time.
    event = make_event(
        starts_at=datetime(2027, 3, 30, 16, 0, tzinfo=UTC),
        ends_at=datetime(2027, 3, 30, 13, 0, tzinfo=ZoneInfo("America/New_York")),
    )
    vevent = only_event(parse(invitation_ics(event, method="REQUEST")))

    assert vevent["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert vevent["DTEND"].params["TZID"] == "Europe/Stockholm"
    start = vevent.decoded("DTSTART")
    end = vevent.decoded("DTEND")
    assert (start.hour, start.minute) == (18, 0)
    assert (end.hour, end.minute) == (19, 0)  # 13:00 New York (EDT) is 19:00 Stockholm
    assert start == event.starts_at
    assert end == event.ends_at


def test_exactly_one_stockholm_vtimezone_with_standard_and_daylight() -> None:
    calendar = parse(invitation_ics(make_event(), method="REQUEST"))
    timezones = calendar.walk("VTIMEZONE")
    assert len(timezones) == 1
    assert str(timezones[0]["TZID"]) == "Europe/Stockholm"
    parts = {component.name for component in timezones[0].subcomponents}
    assert parts == {"STANDARD", "DAYLIGHT"}
    assert calendar.get_missing_tzids() == set()


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        pytest.param(30, 16, id="summer-time-utc+2"),
        pytest.param(23, 17, id="winter-time-utc+1"),
    ],
)
def test_local_wall_time_kept_across_dst_change(day: int, utc_hour: int) -> None:
    event = make_event(
        starts_at=datetime(2027, 3, day, 18, 0, tzinfo=STOCKHOLM),
        ends_at=datetime(2027, 3, day, 20, 0, tzinfo=STOCKHOLM),
    )
    ics = invitation_ics(event, method="REQUEST")
    vevent = only_event(parse(ics))

    assert f"DTSTART;TZID=Europe/Stockholm:202703{day}T180000".encode() in ics
    start = vevent.decoded("DTSTART")
    assert (start.hour, start.minute) == (18, 0)
    assert start.astimezone(UTC) == datetime(2027, 3, day, utc_hour, 0, tzinfo=UTC)


def test_both_sides_of_dst_in_one_feed_share_one_vtimezone() -> None:
    winter = make_event(
        uid="winter@tmn.example",
        starts_at=datetime(2027, 3, 23, 18, tzinfo=STOCKHOLM),
        ends_at=datetime(2027, 3, 23, 19, tzinfo=STOCKHOLM),
    )
    summer = make_event(
        uid="summer@tmn.example",
        starts_at=datetime(2027, 3, 30, 18, tzinfo=STOCKHOLM),
        ends_at=datetime(2027, 3, 30, 19, tzinfo=STOCKHOLM),
    )
    calendar = parse(feed_ics("Möten", [winter, summer]))
    assert len(calendar.walk("VTIMEZONE")) == 1
    starts = {str(e["UID"]): e.decoded("DTSTART").astimezone(UTC) for e in calendar.walk("VEVENT")}
    assert starts == {
        "winter@tmn.example": datetime(2027, 3, 23, 17, tzinfo=UTC),
        "summer@tmn.example": datetime(2027, 3, 30, 16, tzinfo=UTC),
    }


def test_cancel_keeps_uid_and_uses_given_sequence() -> None:
    request = only_event(parse(invitation_ics(make_event(sequence=1), method="REQUEST")))
    calendar = parse(invitation_ics(make_event(sequence=2), method="CANCEL"))
    cancel = only_event(calendar)

    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(cancel["STATUS"]) == "CANCELLED"
    assert str(cancel["UID"]) == str(request["UID"]) == UID
    assert cancel.decoded("SEQUENCE") == 2
    assert len(calendar.walk("VTIMEZONE")) == 1


def test_cancelled_event_is_cancelled_even_in_request() -> None:
    vevent = only_event(parse(invitation_ics(make_event(cancelled=True), method="REQUEST")))
    assert str(vevent["STATUS"]) == "CANCELLED"


def test_organizer_and_attendee_are_mailto_uris() -> None:
    vevent = only_event(parse(invitation_ics(make_event(), method="REQUEST")))

    organizer = vevent["ORGANIZER"]
    assert str(organizer) == "mailto:asa@kommun.example"
    assert organizer.params["CN"] == "Åsa Öberg"

    attendee = vevent["ATTENDEE"]
    assert str(attendee) == "mailto:per@polisen.example"
    assert attendee.params["CN"] == "Per Ärlig"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "TRUE"


def test_optional_fields_are_omitted() -> None:
    event = make_event(
        location=None,
        description="",
        organizer_email=None,
        organizer_name=None,
        attendee_email=None,
        attendee_name=None,
    )
    vevent = only_event(parse(invitation_ics(event, method="REQUEST")))
    for name in ("LOCATION", "URL", "DESCRIPTION", "ORGANIZER", "ATTENDEE"):
        assert name not in vevent


def test_online_url_becomes_url_and_is_in_description() -> None:
    url = "https://meet.example/rum/42?pwd=a,b;c"
    vevent = only_event(parse(invitation_ics(make_event(online_url=url), method="REQUEST")))
    assert str(vevent["URL"]) == url
    description = str(vevent["DESCRIPTION"])
    assert description.startswith("Välkommen!")
    assert url in description


def test_special_text_round_trips() -> None:
    title = 'Möte: å, ä; ö — "citat" \\ bakåt'
    description = "Rad ett, med komma; och semikolon\nRad två: åäö ÅÄÖ\n\nSlut."
    location = "Storgatan 1, 702 10 Örebro; plan 3"
    name = 'Åsa "Kalle" Öberg, samordnare; TMN'
    event = make_event(
        title=title, description=description, location=location, organizer_name=name, attendee_name=name
    )
    ics = invitation_ics(event, method="REQUEST")
    vevent = only_event(parse(ics))

    assert str(vevent["SUMMARY"]) == title
    assert str(vevent["DESCRIPTION"]) == description
    assert str(vevent["LOCATION"]) == location
    assert vevent["ORGANIZER"].params["CN"] == name
    assert vevent["ATTENDEE"].params["CN"] == name
    # Escaped on the wire as RFC 5545 requires, and UTF-8 encoded.
    assert "LOCATION:Storgatan 1\\, 702 10 Örebro\\; plan 3".encode() in ics


def test_control_characters_are_dropped() -> None:
    event = make_event(title="Möte\x00\x07 i\tdag", organizer_name="Åsa\x1b Öberg")
    ics = invitation_ics(event, method="REQUEST")
    vevent = only_event(parse(ics))
    assert str(vevent["SUMMARY"]) == "Möte i\tdag"
    assert vevent["ORGANIZER"].params["CN"] == "Åsa Öberg"
    assert b"\x00" not in ics


def test_feed_holds_several_events() -> None:
    events = [
        make_event(
            uid=f"meeting-{i}@tmn.example",
            sequence=i,
            starts_at=datetime(2027, 3, 20 + i, 18, tzinfo=STOCKHOLM),
            ends_at=datetime(2027, 3, 20 + i, 19, tzinfo=STOCKHOLM),
            cancelled=i == 2,
        )
        for i in range(4)
    ]
    calendar = parse(feed_ics("TMN Örebro län", events))

    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "TMN Örebro län"
    assert str(calendar["X-WR-TIMEZONE"]) == "Europe/Stockholm"
    vevents = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in vevents] == [f"meeting-{i}@tmn.example" for i in range(4)]
    assert [str(e["STATUS"]) for e in vevents] == ["CONFIRMED", "CONFIRMED", "CANCELLED", "CONFIRMED"]
    # A feed is not addressed to anyone: no ATTENDEE/RSVP.
    assert all("ATTENDEE" not in e for e in vevents)
    assert all(e["DTSTART"].params["TZID"] == "Europe/Stockholm" for e in vevents)
    assert len(calendar.walk("VTIMEZONE")) == 1


def test_empty_feed_is_valid_and_has_vtimezone() -> None:
    ics = feed_ics("Tom", [])
    calendar = parse(ics)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "Tom"
    assert calendar.walk("VEVENT") == []
    timezones = calendar.walk("VTIMEZONE")
    assert [str(tz["TZID"]) for tz in timezones] == ["Europe/Stockholm"]
    assert vobject.readOne(ics.decode()).name == "VCALENDAR"


def test_feed_rejects_duplicate_uids() -> None:
    with pytest.raises(ValueError, match="duplicate UID"):
        feed_ics("x", [make_event(), make_event()])


def test_vtimezone_itself_gives_right_offsets_far_ahead() -> None:
    # Read the offsets from the emitted VTIMEZONE alone (dateutil, not zoneinfo), so a
    # VTIMEZONE that stops too early (the library default ends in 2038) would show up here.
    event = make_event(
        starts_at=datetime(2051, 7, 1, 18, tzinfo=STOCKHOLM),
        ends_at=datetime(2051, 7, 1, 19, tzinfo=STOCKHOLM),
    )
    text = invitation_ics(event, method="REQUEST").decode()
    tz = dateutil.tz.tzical(io.StringIO(text)).get("Europe/Stockholm")
    for year in (2027, 2040, 2051):
        assert datetime(year, 7, 1, 18, tzinfo=tz).astimezone(UTC).hour == 16
        assert datetime(year, 1, 15, 18, tzinfo=tz).astimezone(UTC).hour == 17


def test_vtimezone_is_the_same_for_every_message() -> None:
    # Clients may cache a VTIMEZONE by TZID, so its definition must not depend on the events.
    def vtimezone(ics: bytes) -> bytes:
        return ics[ics.index(b"BEGIN:VTIMEZONE") : ics.index(b"END:VTIMEZONE")]

    early = make_event(
        starts_at=datetime(2021, 1, 5, 18, tzinfo=STOCKHOLM),
        ends_at=datetime(2021, 1, 5, 19, tzinfo=STOCKHOLM),
    )
    assert vtimezone(invitation_ics(early, method="REQUEST")) == vtimezone(
        invitation_ics(make_event(), method="CANCEL")
    )
    assert vtimezone(feed_ics("x", [])) == vtimezone(feed_ics("x", [make_event()]))


def test_vtimezone_is_rrule_based_for_outlook() -> None:
    # Outlook reads only DTSTART/RRULE/TZOFFSETFROM/TZOFFSETTO of a VTIMEZONE, so no RDATE lists.
    calendar = parse(invitation_ics(make_event(), method="REQUEST"))
    (timezone,) = calendar.walk("VTIMEZONE")
    rules = {part.name: part["RRULE"].to_ical() for part in timezone.subcomponents}
    assert rules == {
        "DAYLIGHT": b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
        "STANDARD": b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
    }
    assert all("RDATE" not in part for part in timezone.subcomponents)


def test_vtimezone_agrees_with_tzdata_around_every_transition() -> None:
    text = feed_ics("x", []).decode()
    tz = dateutil.tz.tzical(io.StringIO(text)).get("Europe/Stockholm")
    for year in range(1997, 2061):
        for month in (3, 10):
            instant = datetime(year, month, 24, tzinfo=UTC)  # the last Sunday is the 25th-31st
            for _ in range(8 * 24):
                assert instant.astimezone(tz).utcoffset() == instant.astimezone(STOCKHOLM).utcoffset()
                instant += timedelta(hours=1)


def test_falls_back_to_tzdata_vtimezone_when_rule_does_not_hold() -> None:
    # The RRULE form starts in 1996 (the EU rule); earlier summer time needs tzdata's history.
    event = make_event(
        starts_at=datetime(1995, 7, 10, 18, tzinfo=STOCKHOLM),
        ends_at=datetime(1995, 7, 10, 19, tzinfo=STOCKHOLM),
    )
    ics = invitation_ics(event, method="REQUEST")
    calendar = parse(ics)
    (timezone,) = calendar.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == "Europe/Stockholm"
    assert b"RDATE" in ics
    assert b"DTSTART;TZID=Europe/Stockholm:19950710T180000" in ics
    tz = dateutil.tz.tzical(io.StringIO(ics.decode())).get("Europe/Stockholm")
    assert datetime(1995, 7, 10, 18, tzinfo=tz).astimezone(UTC) == datetime(1995, 7, 10, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "written"),
    [
        # 02:30 happens twice on 2027-10-31; the first one is written as local time ...
        pytest.param(
            datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
            b"DTSTART;TZID=Europe/Stockholm:20271031T023000",
            id="first",
        ),
        # ... the second one can only be said in UTC.
        pytest.param(datetime(2027, 10, 31, 1, 30, tzinfo=UTC), b"DTSTART:20271031T013000Z", id="second"),
    ],
)
def test_ambiguous_local_time_keeps_its_instant(instant: datetime, written: bytes) -> None:
    event = make_event(starts_at=instant, ends_at=instant + timedelta(hours=2))
    ics = invitation_ics(event, method="REQUEST")
    assert written in ics
    vevent = only_event(parse(ics))
    # Compare in UTC: by PEP 495 an ambiguous local time never equals a time in another zone.
    assert vevent.decoded("DTSTART").astimezone(UTC) == instant
    assert vevent.decoded("DTEND").astimezone(UTC) == instant + timedelta(hours=2)


@pytest.mark.parametrize("field", ["starts_at", "ends_at", "stamp"])
def test_naive_datetime_raises(field: str) -> None:
    naive = {
        "starts_at": datetime(2027, 3, 30, 18),
        "ends_at": datetime(2027, 3, 30, 20),
        "stamp": datetime(2027, 3, 1, 9),
    }[field]
    event = make_event(**{field: naive})
    with pytest.raises(ValueError, match="naive"):
        invitation_ics(event, method="REQUEST")
    with pytest.raises(ValueError, match="naive"):
        feed_ics("x", [event])


def test_end_before_start_raises() -> None:
    event = make_event(ends_at=datetime(2027, 3, 30, 17, tzinfo=STOCKHOLM))
    with pytest.raises(ValueError, match="after starts_at"):
        invitation_ics(event, method="REQUEST")


def test_vobject_parses_invitation_independently() -> None:
    event = make_event(
        sequence=5,
        title="Samverkan, polis; skola — åäö",
        online_url="https://meet.example/tmn",
    )
    text = invitation_ics(event, method="REQUEST").decode("utf-8")
    parsed = vobject.readOne(text)

    assert parsed.method.value == "REQUEST"
    vevent = parsed.vevent
    assert vevent.uid.value == UID
    assert vevent.sequence.value == "5"
    assert vevent.status.value == "CONFIRMED"
    assert vevent.summary.value == "Samverkan, polis; skola — åäö"
    assert vevent.location.value == "Stadshuset, Örebro"
    assert vevent.url.value == "https://meet.example/tmn"
    assert vevent.organizer.value == "mailto:asa@kommun.example"
    assert vevent.organizer.params["CN"] == ["Åsa Öberg"]
    assert vevent.attendee.value == "mailto:per@polisen.example"
    assert vevent.attendee.params["RSVP"] == ["TRUE"]
    # vobject moves TZID into its own parameter after resolving it against the VTIMEZONE.
    assert vevent.dtstart.params["X-VOBJ-ORIGINAL-TZID"] == ["Europe/Stockholm"]
    start = vevent.dtstart.value
    assert (start.hour, start.minute) == (18, 0)
    assert start.utcoffset() == timedelta(hours=2)
    assert start.astimezone(UTC) == datetime(2027, 3, 30, 16, tzinfo=UTC)
    assert [c.tzid.value for c in parsed.vtimezone_list] == ["Europe/Stockholm"]
