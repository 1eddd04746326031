"""E-mail messages: Swedish and English templates, plain text and HTML, autoescaped.

`render_email(name, language, context)` renders the subject, the text and the HTML of one
message in the recipient's language (Swedish when the language is unknown). A missing context
variable is an error, never a blank. Dates are shown in Europe/Stockholm time.

Templates and the context each needs:

- `meeting_invitation`: organization_name, meeting_title, starts_at, ends_at (aware datetimes),
  venue (or None), online_url (or None), registration_url, registration_deadline (date),
  coordinator_name, coordinator_email, coordinator_phone (optional), municipality_name, agenda (list of str),
  contacts (list of {organization, role, phone}: whom to call).
- `meeting_reminder`: meeting_title, starts_at, venue, online_url, registration_url.
- `minutes`: meeting_title, held_on (date), minutes_text, coordinator_name.
- `certificate_issued`: organization_name, certification_number, valid_until (date), verify_url.
- `follow_up_due`: organization_name, due_by (date), coordinator_name, coordinator_email.
- `certification_lapsed`: organization_name, lapsed_on (date), coordinator_name, coordinator_email.

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

STOCKHOLM = ZoneInfo("Europe/Stockholm")
LANGUAGES = ("sv", "en")
TEMPLATE_NAMES = (
    "meeting_invitation",
    "meeting_reminder",
    "minutes",
    "certificate_issued",
    "follow_up_due",
    "certification_lapsed",
)
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


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(when=format_when, day=format_day, time=format_time)
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
        **context,
        "lang": lang,
    }

    def render(suffix: str) -> str:
        return _ENV.get_template(f"{lang}/{name}.{suffix}").render(values)

    subject = " ".join(render("subject.txt").split())
    return RenderedEmail(subject=subject, text=render("txt"), html=render("html"))
