"""E-mail templates: Swedish and English, text and HTML, autoescaped, Stockholm time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import jinja2
import pytest

from service.messages import TEMPLATE_NAMES, format_when, render_email
from service.outbox.service import OutboxService
from service.pluginspec import Attachment
from tests.helpers import context
from tests.test_email import mail_settings, worker_for

HOSTILE = "<script>alert(1)</script> & Co"


def full_context(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "recipient_name": "Elin",
        "organization_name": "Storgatans Livs",
        "meeting_title": "Samverkansmöte Älvsbyn",
        "starts_at": datetime(2027, 3, 30, 16, 0, tzinfo=UTC),
        "ends_at": datetime(2027, 3, 30, 18, 0, tzinfo=UTC),
        "venue": "Kommunhuset, Storgatan 27, Älvsbyn",
        "online_url": None,
        "registration_url": "https://tmn.alvsbyn.example/r/abc",
        "registration_deadline": date(2027, 3, 23),
        "coordinator_name": "Anna Lindqvist",
        "coordinator_email": "anna.lindqvist@alvsbyn.example",
        "coordinator_phone": "0929-170 00",
        "municipality_name": "Älvsbyn",
        "agenda": ["Polisen: lägesbild", "Tullverket: försändelser"],
        "contacts": [
            {"organization": "Polisen", "role": "Akut", "phone": "112"},
            {"organization": "Polisen", "role": "Ej akut", "phone": "114 14"},
        ],
        "held_on": date(2027, 3, 30),
        "minutes_text": "Vi gick igenom rutinen vid disken.",
        "certification_number": "TMN-2560-0001",
        "valid_until": date(2028, 3, 30),
        "verify_url": "https://tmn.alvsbyn.example/verify/TMN-2560-0001",
        "due_by": date(2028, 3, 30),
        "lapsed_on": date(2028, 6, 28),
        # Meeting registrations. The links reuse the registration URL: the all-templates test
        # accepts only the two URLs above.
        "waitlisted": False,
        "waitlist_position": None,
        "checkin_code": "K7M2-QX9P",
        "cancel_url": "https://tmn.alvsbyn.example/r/abc",
        "accept_url": "https://tmn.alvsbyn.example/r/abc",
        "offer_expires_at": datetime(2027, 3, 29, 14, 0, tzinfo=UTC),
        "reason": None,
        "survey_url": "https://tmn.alvsbyn.example/r/abc",
        "respondent": "attendee",
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_template_renders(name: str, language: str) -> None:
    rendered = render_email(name, language, full_context())
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.strip() and f'<html lang="{language}">' in rendered.html
    other = render_email(name, "en" if language == "sv" else "sv", full_context())
    assert other.text != rendered.text
    # No resources from elsewhere: the only URLs are the ones passed in.
    urls = set(re.findall(r"https?://[^\"'<>\s]+", rendered.html))
    assert urls <= {"https://tmn.alvsbyn.example/r/abc", "https://tmn.alvsbyn.example/verify/TMN-2560-0001"}


def test_the_invitation_says_what_appendix_2_asks_for() -> None:
    sv = render_email("meeting_invitation", "sv", full_context())
    for fact in (
        "Polisen",
        "Tullverket",
        "kommunen",
        "tisdag 30 mars 2027 kl. 18.00–20.00",
        "Kommunhuset, Storgatan 27",
        "tisdag 23 mars 2027",
        "https://tmn.alvsbyn.example/r/abc",
        "Anna Lindqvist",
        "114 14",
        "certifieras",
    ):
        assert fact in sv.text, fact
    en = render_email("meeting_invitation", "en", full_context())
    assert "Tuesday 30 March 2027, 18:00–20:00" in en.text
    assert en.subject == "Invitation: Samverkansmöte Älvsbyn on Tuesday 30 March 2027"


def test_stockholm_time_across_daylight_saving() -> None:
    winter = datetime(2027, 1, 12, 17, 0, tzinfo=UTC)  # CET, UTC+1
    summer = datetime(2027, 3, 30, 16, 0, tzinfo=UTC)  # CEST, UTC+2
    assert format_when(winter, "sv") == "tisdag 12 januari 2027 kl. 18.00"
    assert format_when(summer, "sv") == "tisdag 30 mars 2027 kl. 18.00"
    with pytest.raises(ValueError, match="time zone"):
        format_when(datetime(2027, 1, 12, 17, 0), "sv")


def test_html_is_escaped_and_text_is_not() -> None:
    rendered = render_email("certificate_issued", "sv", full_context(organization_name=HOSTILE))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html
    assert HOSTILE in rendered.text


def test_missing_values_and_unknown_names_fail_loudly() -> None:
    values = full_context()
    del values["verify_url"]
    with pytest.raises(jinja2.UndefinedError):
        render_email("certificate_issued", "sv", values)
    with pytest.raises(KeyError):
        render_email("birthday_greeting", "sv", full_context())


def test_unknown_language_falls_back_to_swedish() -> None:
    assert render_email("minutes", "de", full_context()) == render_email("minutes", "sv", full_context())


def test_mailings_carry_an_unsubscribe_line() -> None:
    rendered = render_email(
        "minutes", "en", full_context(unsubscribe_url="https://tmn.example/v1/unsubscribe/t")
    )
    assert "Unsubscribe" in rendered.html and "https://tmn.example/v1/unsubscribe/t" in rendered.text


@pytest.mark.parametrize("language", ["sv", "en"])
async def test_an_invitation_arrives_in_the_recipients_language(
    session, settings, smtp, language: str
) -> None:
    settings = mail_settings(settings, smtp.port)
    rendered = render_email("meeting_invitation", language, full_context())
    ics = Attachment(
        filename="mote.ics", content_type="text/calendar", content=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    )
    await OutboxService(context(session), settings).enqueue_email(
        to="elin@storgatan.example",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        language=language,
        attachments=[ics],
    )
    await session.commit()
    await worker_for(session, settings).run_once()
    [received] = smtp.inbox.messages
    assert received["Subject"] == rendered.subject
    html = received.get_body(("html",)).get_content()
    text = received.get_body(("plain",)).get_content()
    assert f'lang="{language}"' in html
    assert ("Anmäl senast" in text) == (language == "sv")
    assert ("Please register" in text) == (language == "en")
    assert [a.get_filename() for a in received.iter_attachments()] == ["mote.ics"]
