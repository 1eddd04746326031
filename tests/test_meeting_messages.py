"""E-mails about meetings: registrations, the waiting list, changes, cancellations, surveys."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import jinja2
import pytest

from service.messages import KIND_LABELS, TEMPLATE_NAMES, kind_label, markdown_to_html, render_email

NEW_TEMPLATES = (
    "registration_confirmed",
    "waitlist_offer",
    "meeting_updated",
    "meeting_cancelled",
    "survey_invitation",
)
HOSTILE = "<script>alert(1)</script> & Co"
STARTS = datetime(2027, 3, 30, 16, 0, tzinfo=UTC)  # 18.00 in Stockholm (summer time)
ENDS = datetime(2027, 3, 30, 18, 0, tzinfo=UTC)


def meeting(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "recipient_name": "Elin",
        "meeting_title": "Samverkansmöte Älvsbyn",
        "starts_at": STARTS,
        "ends_at": ENDS,
        "venue": "Kommunhuset, Storgatan 27, Älvsbyn",
        "online_url": None,
    }
    values.update(overrides)
    return values


CONTEXTS: dict[str, dict[str, Any]] = {
    "registration_confirmed": meeting(
        organization_name="Storgatans Livs",
        waitlisted=False,
        waitlist_position=None,
        checkin_code="K7M2-QX9P",
        cancel_url="https://tmn.example/r/cancel",
    ),
    "waitlist_offer": meeting(
        accept_url="https://tmn.example/r/accept",
        offer_expires_at=datetime(2027, 3, 29, 14, 0, tzinfo=UTC),
    ),
    "meeting_updated": meeting(registration_url="https://tmn.example/r/abc"),
    "meeting_cancelled": {
        "recipient_name": "Elin",
        "meeting_title": "Samverkansmöte Älvsbyn",
        "starts_at": STARTS,
        "reason": "Föreläsaren är sjuk",
        "coordinator_name": "Anna Lindqvist",
        "coordinator_email": "anna.lindqvist@alvsbyn.example",
    },
    "survey_invitation": {
        "recipient_name": "Elin",
        "meeting_title": "Samverkansmöte Älvsbyn",
        "held_on": date(2027, 3, 30),
        "survey_url": "https://tmn.example/s/xyz",
        "respondent": "attendee",
    },
}

INVITATION: dict[str, Any] = meeting(
    organization_name="Storgatans Livs",
    registration_url="https://tmn.example/r/abc",
    registration_deadline=date(2027, 3, 23),
    coordinator_name="Anna Lindqvist",
    coordinator_email="anna.lindqvist@alvsbyn.example",
    municipality_name="Älvsbyn",
    agenda=["Polisen: lägesbild"],
    contacts=[],
)
MINUTES: dict[str, Any] = {
    "meeting_title": "Samverkansmöte Älvsbyn",
    "held_on": date(2027, 3, 30),
    "minutes_text": "Vi gick igenom **fet** rutin.\n\n- punkt ett\n- punkt två\n\n<script>alert(1)</script>",
    "coordinator_name": "Anna Lindqvist",
}


def test_the_new_templates_are_registered() -> None:
    assert set(NEW_TEMPLATES) <= set(TEMPLATE_NAMES)


@pytest.mark.parametrize("name", NEW_TEMPLATES)
@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_new_template_renders_with_its_own_context(name: str, language: str) -> None:
    rendered = render_email(name, language, CONTEXTS[name])
    assert rendered.subject and "\n" not in rendered.subject
    assert "Samverkansmöte Älvsbyn" in rendered.subject
    assert rendered.text.strip() and f'<html lang="{language}">' in rendered.html
    assert "Samverkansmöte Älvsbyn" in rendered.text and "Samverkansmöte Älvsbyn" in rendered.html
    other = render_email(name, "en" if language == "sv" else "sv", CONTEXTS[name])
    assert other.text != rendered.text and other.subject != rendered.subject


@pytest.mark.parametrize("name", NEW_TEMPLATES)
@pytest.mark.parametrize("language", ["sv", "en"])
def test_hostile_values_are_escaped_in_html(name: str, language: str) -> None:
    context = {**CONTEXTS[name], "meeting_title": HOSTILE, "recipient_name": HOSTILE}
    rendered = render_email(name, language, context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html
    assert HOSTILE in rendered.text


@pytest.mark.parametrize("name", NEW_TEMPLATES)
def test_a_missing_variable_fails_loudly(name: str) -> None:
    context = dict(CONTEXTS[name])
    del context["meeting_title"]
    with pytest.raises(jinja2.UndefinedError):
        render_email(name, "sv", context)


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("registration_confirmed", "cancel_url"),
        ("registration_confirmed", "checkin_code"),
        ("waitlist_offer", "offer_expires_at"),
        ("meeting_updated", "registration_url"),
        ("meeting_cancelled", "reason"),
        ("survey_invitation", "respondent"),
    ],
)
def test_each_specific_variable_is_required(name: str, variable: str) -> None:
    context = dict(CONTEXTS[name])
    del context[variable]
    with pytest.raises(jinja2.UndefinedError):
        render_email(name, "en", context)


def test_a_confirmed_seat_shows_the_checkin_code_and_the_calendar_file() -> None:
    sv = render_email("registration_confirmed", "sv", CONTEXTS["registration_confirmed"])
    for part in (sv.text, sv.html):
        assert "K7M2-QX9P" in part
        assert "QR-koden" in part and "kalenderfilen" in part
        assert "https://tmn.example/r/cancel" in part
        assert "Storgatans Livs" in part
        assert "tisdag 30 mars 2027 kl. 18.00–20.00" in part
        assert "reservlistan" not in part.replace("stå på reservlistan", "")
    assert sv.subject == "Anmälan bekräftad: Samverkansmöte Älvsbyn tisdag 30 mars 2027"
    en = render_email("registration_confirmed", "en", CONTEXTS["registration_confirmed"])
    assert "K7M2-QX9P" in en.text and "QR code" in en.text and "Tuesday 30 March 2027, 18:00–20:00" in en.text


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_waiting_list_shows_the_position_and_no_code(language: str) -> None:
    context = {**CONTEXTS["registration_confirmed"], "waitlisted": True, "waitlist_position": 3}
    context["checkin_code"] = None
    rendered = render_email("registration_confirmed", language, context)
    position = "nummer 3" if language == "sv" else "position 3"
    qr = "QR-kod" if language == "sv" else "QR code"
    calendar = "kalenderfil" if language == "sv" else "calendar file"
    for part in (rendered.text, rendered.html):
        assert position in part
        assert qr not in part and calendar not in part and "None" not in part
        assert "https://tmn.example/r/cancel" in part
    assert rendered.subject.startswith("Reservlista:" if language == "sv" else "Waiting list:")
    # Waitlisted, the code need not be passed at all.
    del context["checkin_code"]
    assert render_email("registration_confirmed", language, context) == rendered


def test_the_waiting_list_without_a_known_position() -> None:
    context = {**CONTEXTS["registration_confirmed"], "waitlisted": True, "checkin_code": None}
    rendered = render_email("registration_confirmed", "sv", context)
    assert "du står på reservlistan." in rendered.text and "nummer" not in rendered.text


def test_an_online_meeting_shows_its_link() -> None:
    context = {**CONTEXTS["registration_confirmed"], "venue": None, "online_url": "https://meet.example/x"}
    rendered = render_email("registration_confirmed", "sv", context)
    assert "Digitalt: https://meet.example/x" in rendered.text and "Var:" not in rendered.text
    assert '<a href="https://meet.example/x">' in rendered.html


def test_a_waitlist_offer_shows_the_deadline_in_stockholm_time() -> None:
    sv = render_email("waitlist_offer", "sv", CONTEXTS["waitlist_offer"])
    for part in (sv.text, sv.html):
        assert "senast måndag 29 mars 2027 kl. 16.00" in part
        assert "https://tmn.example/r/accept" in part
        assert "nästa person på reservlistan" in part
    en = render_email("waitlist_offer", "en", CONTEXTS["waitlist_offer"])
    assert "by Monday 29 March 2027, 16:00" in en.text and "next person on the waiting list" in en.text
    # Winter time: 14:00Z is 15.00 in Stockholm.
    winter = {**CONTEXTS["waitlist_offer"], "offer_expires_at": datetime(2027, 1, 11, 14, 0, tzinfo=UTC)}
    assert "måndag 11 januari 2027 kl. 15.00" in render_email("waitlist_offer", "sv", winter).text


def test_a_naive_deadline_is_refused() -> None:
    context = {**CONTEXTS["waitlist_offer"], "offer_expires_at": datetime(2027, 3, 29, 14, 0)}
    with pytest.raises(ValueError, match="time zone"):
        render_email("waitlist_offer", "sv", context)


def test_an_updated_meeting_gives_the_new_details() -> None:
    moved = {**CONTEXTS["meeting_updated"], "starts_at": datetime(2027, 4, 6, 15, 0, tzinfo=UTC)}
    moved["ends_at"] = datetime(2027, 4, 6, 17, 0, tzinfo=UTC)
    sv = render_email("meeting_updated", "sv", moved)
    assert "tisdag 6 april 2027 kl. 17.00–19.00" in sv.text and "kalenderfilen" in sv.text
    assert "https://tmn.example/r/abc" in sv.text and "https://tmn.example/r/abc" in sv.html
    without_link = render_email("meeting_updated", "sv", {**moved, "registration_url": None})
    assert "https://" not in without_link.text and "None" not in without_link.text
    en = render_email("meeting_updated", "en", moved)
    assert "Tuesday 6 April 2027, 17:00–19:00" in en.text and "calendar file" in en.text


def test_a_cancelled_meeting_gives_the_reason_when_there_is_one() -> None:
    sv = render_email("meeting_cancelled", "sv", CONTEXTS["meeting_cancelled"])
    for part in (sv.text, sv.html):
        assert "inställt" in part and "Föreläsaren är sjuk" in part
        assert "kalenderfilen tar bort mötet" in part and "anna.lindqvist@alvsbyn.example" in part
    assert sv.subject == "Inställt: Samverkansmöte Älvsbyn tisdag 30 mars 2027"
    no_reason = render_email("meeting_cancelled", "en", {**CONTEXTS["meeting_cancelled"], "reason": None})
    assert "has been cancelled" in no_reason.text
    assert "Reason" not in no_reason.text and "None" not in no_reason.text and "Reason" not in no_reason.html


def test_the_survey_is_anonymous_and_instructors_are_addressed_as_such() -> None:
    attendee = render_email("survey_invitation", "sv", CONTEXTS["survey_invitation"])
    for part in (attendee.text, attendee.html):
        assert "anonym" in part and "några minuter" in part and "kopplas inte till dig" in part
        assert "tisdag 30 mars 2027" in part and "https://tmn.example/s/xyz" in part
        assert "deltog" in part and "instruktör" not in part
    instructor = render_email(
        "survey_invitation", "sv", {**CONTEXTS["survey_invitation"], "respondent": "instructor"}
    )
    assert "Som instruktör" in instructor.text and "deltog" not in instructor.text
    assert "anonym" in instructor.text
    en = render_email(
        "survey_invitation", "en", {**CONTEXTS["survey_invitation"], "respondent": "instructor"}
    )
    assert "As an instructor" in en.text and "anonymous" in en.text and "few minutes" in en.text
    # held_on may be a datetime: shown as the Stockholm day.
    late = {**CONTEXTS["survey_invitation"], "held_on": datetime(2027, 3, 30, 22, 30, tzinfo=UTC)}
    assert "onsdag 31 mars 2027" in render_email("survey_invitation", "sv", late).text


def test_the_invitation_names_another_kind_of_meeting() -> None:
    sv = render_email("meeting_invitation", "sv", {**INVITATION, "meeting_kind": "follow_up_meeting"})
    for part in (sv.text, sv.html):
        assert "uppföljningsmöte" in part
        assert "samverkansmöte" not in part
        assert "utlämningsställe" not in part and "ombud" not in part
        assert "https://tmn.example/r/abc" in part
    en = render_email("meeting_invitation", "en", {**INVITATION, "meeting_kind": "instructor_training"})
    for part in (en.text, en.html):
        assert "instructor training" in part and "collaboration meeting" not in part
        assert "pickup point" not in part


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_collaboration_meeting_is_the_default_kind(language: str) -> None:
    default = render_email("meeting_invitation", language, INVITATION)
    explicit = render_email(
        "meeting_invitation", language, {**INVITATION, "meeting_kind": "collaboration_meeting"}
    )
    assert default == explicit
    assert ("ett samverkansmöte" if language == "sv" else "a collaboration meeting") in default.text


@pytest.mark.parametrize("kind", sorted(KIND_LABELS["sv"]))
@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_kind_has_a_label_and_an_invitation(kind: str, language: str) -> None:
    label = KIND_LABELS[language][kind]
    assert kind_label(kind, language) == label
    rendered = render_email("meeting_invitation", language, {**INVITATION, "meeting_kind": kind})
    assert label in rendered.text and label in rendered.html


def test_the_kind_labels_are_complete_and_unknown_kinds_fail() -> None:
    assert KIND_LABELS["sv"].keys() == KIND_LABELS["en"].keys()
    assert KIND_LABELS["sv"]["follow_up_meeting"] == "uppföljningsmöte"
    assert KIND_LABELS["en"]["county_group"] == "county group meeting"
    with pytest.raises(ValueError, match="meeting kind"):
        render_email("meeting_invitation", "sv", {**INVITATION, "meeting_kind": "birthday_party"})


def test_the_minutes_are_markdown_in_html_and_raw_in_text() -> None:
    rendered = render_email("minutes", "sv", MINUTES)
    assert "<strong>fet</strong>" in rendered.html
    assert "<li>punkt ett</li>" in rendered.html
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "white-space:pre-line" not in rendered.html
    assert "**fet**" in rendered.text and "<script>alert(1)</script>" in rendered.text
    en = render_email("minutes", "en", MINUTES)
    assert "<strong>fet</strong>" in en.html and "<script>" not in en.html


def test_markdown_to_html_escapes_html_and_refuses_script_links() -> None:
    assert markdown_to_html("**fet**") == "<p><strong>fet</strong></p>\n"
    html = markdown_to_html('<img src=x onerror="alert(1)"> & [x](javascript:alert(1)) <b>b</b>')
    assert "<img" not in html and "<b>" not in html and "&amp;" in html
    assert 'href="javascript:' not in html
    assert markdown_to_html("") == ""
