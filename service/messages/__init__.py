"""E-mail messages: Swedish and English templates, plain text and HTML, autoescaped.

`render_email(name, language, context)` renders the subject, the text and the HTML of one
message in the recipient's language (Swedish when the language is unknown). A missing context
variable is an error, never a blank. Dates are shown in Europe/Stockholm time.

Templates and the context each needs:

- `meeting_invitation`: organization_name, meeting_title, starts_at, ends_at (aware datetimes),
  venue (or None), online_url (or None), registration_url, registration_deadline (date),
  coordinator_name, coordinator_email, coordinator_phone (optional), municipality_name, agenda (list of str),
  contacts (list of {organization, role, phone}: whom to call), meeting_kind (optional, a key of
  KIND_LABELS, default "collaboration_meeting"; any other kind gets a short generic introduction
  naming the kind instead of the collaboration meeting's pickup-point text).
- `meeting_reminder`: meeting_title, starts_at, venue, online_url, registration_url.
- `minutes`: meeting_title, held_on (date), minutes_text (Markdown: kept as is in the text part,
  rendered with raw HTML escaped in the HTML part), coordinator_name.
- `certificate_issued`: organization_name, certification_number, valid_until (date), verify_url.
- `follow_up_due`: organization_name, due_by (date), coordinator_name, coordinator_email.
- `certification_lapsed`: organization_name, lapsed_on (date), coordinator_name, coordinator_email.
- `registration_confirmed`: recipient_name (or None), organization_name, meeting_title, starts_at,
  ends_at, venue (or None), online_url (or None), waitlisted (bool), waitlist_position (int or None),
  checkin_code (or None; None when waitlisted), cancel_url. A seat: the check-in code (the attached
  QR code) and the attached calendar file; the waiting list: the position, neither code nor calendar.
- `waitlist_offer`: recipient_name, meeting_title, starts_at, ends_at, venue, online_url, accept_url,
  offer_expires_at (aware datetime).
- `meeting_updated`: recipient_name, meeting_title, starts_at, ends_at, venue, online_url,
  registration_url (or None). The attached calendar file updates the calendar entry.
- `meeting_cancelled`: recipient_name, meeting_title, starts_at, reason (or None), coordinator_name,
  coordinator_email. The attached calendar file removes the calendar entry.
- `survey_invitation`: recipient_name, meeting_title, held_on (date or datetime), survey_url,
  respondent ("attendee" or "instructor").

Every template also takes an optional `unsubscribe_url` (mailings), shown as a footer line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

STOCKHOLM = ZoneInfo("Europe/Stockholm")
LANGUAGES = ("sv", "en")
TEMPLATE_NAMES = (
    "meeting_invitation",
    "meeting_reminder",
    "minutes",
    "certificate_issued",
    "follow_up_due",
    "certification_lapsed",
    "registration_confirmed",
    "waitlist_offer",
    "meeting_updated",
    "meeting_cancelled",
    "survey_invitation",
)
# Meeting kinds in words, as they read inside a sentence ("an invitation to a follow-up meeting").
KIND_LABELS: dict[str, dict[str, str]] = {
    "sv": {
        "collaboration_meeting": "samverkansmöte",
        "instructor_training": "instruktörsutbildning",
        "local_working_group": "lokal arbetsgrupp",
        "workplace_meeting": "arbetsplatsträff",
        "follow_up_meeting": "uppföljningsmöte",
        "county_group": "länsgrupp",
        "regional_management_group": "regional ledningsgrupp",
        "regional_conference": "regional konferens",
    },
    "en": {
        "collaboration_meeting": "collaboration meeting",
        "instructor_training": "instructor training",
        "local_working_group": "local working group meeting",
        "workplace_meeting": "workplace meeting",
        "follow_up_meeting": "follow-up meeting",
        "county_group": "county group meeting",
        "regional_management_group": "regional management group meeting",
        "regional_conference": "regional conference",
    },
}
_WEEKDAYS = {
    "sv": ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
_MONTHS = {
    "sv": [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


class RenderedEmail(msgspec.Struct, frozen=True):
    subject: str
    text: str
    html: str


def format_day(value: date, language: str) -> str:
    """ "tisdag 3 februari 2027" / "Tuesday 3 February 2027"."""
    if isinstance(value, datetime):
        value = value.astimezone(STOCKHOLM).date()
    weekday, month = _WEEKDAYS[language][value.weekday()], _MONTHS[language][value.month - 1]
    return f"{weekday} {value.day} {month} {value.year}"


def format_time(value: datetime, language: str) -> str:
    """Local Stockholm time, summer time included: "18.00" / "18:00"."""
    local = value.astimezone(STOCKHOLM)
    return f"{local:%H.%M}" if language == "sv" else f"{local:%H:%M}"


def format_when(value: datetime, language: str) -> str:
    """ "tisdag 3 februari 2027 kl. 18.00" / "Tuesday 3 February 2027, 18:00"."""
    if value.tzinfo is None:
        raise ValueError("meeting times must carry a time zone")
    joiner = " kl. " if language == "sv" else ", "
    return format_day(value, language) + joiner + format_time(value, language)


def kind_label(kind: str, language: str) -> str:
    """A meeting kind in words: "follow_up_meeting" -> "uppföljningsmöte" / "follow-up meeting"."""
    labels = KIND_LABELS[language if language in KIND_LABELS else "sv"]
    try:
        return labels[kind]
    except KeyError:
        raise ValueError(f"unknown meeting kind {kind!r}") from None


# CommonMark with raw HTML disabled: "<script>" in the source is escaped, never passed through
# (markdown-it also refuses javascript:, vbscript:, file: and data: links).
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def markdown_to_html(text: str) -> str:
    """Markdown (CommonMark) to an HTML fragment; raw HTML in `text` comes out escaped."""
    html: str = _MARKDOWN.render(text)  # typed as Any by markdown-it; the HTML renderer returns str
    return html


def _markdown_filter(text: str) -> Markup:
    # Safe: markdown-it escapes every raw HTML tag and attribute value in `text`.
    return Markup(markdown_to_html(text))  # noqa: S704


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        when=format_when, day=format_day, time=format_time, kind_label=kind_label, markdown=_markdown_filter
    )
    return env


_ENV = _environment()


def render_email(name: str, language: str, context: Mapping[str, Any]) -> RenderedEmail:
    if name not in TEMPLATE_NAMES:
        raise KeyError(f"no e-mail template {name!r}")
    lang = language if language in LANGUAGES else "sv"
    values = {
        "unsubscribe_url": None,
        "recipient_name": None,
        "coordinator_phone": None,
        "meeting_kind": "collaboration_meeting",
        **context,
        "lang": lang,
    }

    def render(suffix: str) -> str:
        return _ENV.get_template(f"{lang}/{name}.{suffix}").render(values)

    subject = " ".join(render("subject.txt").split())
    return RenderedEmail(subject=subject, text=render("txt"), html=render("html"))
