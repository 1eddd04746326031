"""The standard evaluation questions per kind of meeting and respondent (a 1–5 agreement scale)."""

from __future__ import annotations

from typing import NamedTuple

from service.meetings.models import PICKUP_POINT_MEETINGS, MeetingKind


class Question(NamedTuple):
    key: str
    sv: str
    en: str


SCALE = "1 = instämmer inte alls … 5 = instämmer helt / 1 = strongly disagree … 5 = strongly agree"

_USEFUL = Question("meeting_useful", "Mötet var givande", "The meeting was worthwhile")
_CONTACT = Question("know_whom_to_contact", "Jag vet vem jag ska kontakta", "I know whom to contact")

_STAFF = (
    Question(
        "feel_safer",
        "Jag känner mig tryggare i att hantera misstänkta försändelser",
        "I feel safer handling suspicious shipments",
    ),
    _CONTACT,
    Question(
        "will_contact_police",
        "Jag kommer att kontakta polisen om jag möter en misstänkt försändelse",
        "I will contact the police if I meet a suspicious shipment",
    ),
    Question(
        "know_the_law",
        "Jag vet vad lagen säger om försändelser som kan innehålla droger",
        "I know what the law says about shipments that may hold drugs",
    ),
    _USEFUL,
)
_INSTRUCTORS = (
    Question("participants_engaged", "Deltagarna var engagerade", "The participants were engaged"),
    Question("material_worked", "Underlaget fungerade bra", "The material worked well"),
    _USEFUL,
)
_TRAINING = (
    Question(
        "ready_to_lead",
        "Jag känner mig redo att leda samverkansmöten",
        "I feel ready to lead collaboration meetings",
    ),
    _CONTACT,
    _USEFUL,
)
_GROUP = (
    _USEFUL,
    Question(
        "collaboration_improved",
        "Samverkan mellan oss har blivit bättre",
        "Our collaboration has improved",
    ),
    _CONTACT,
)

RESPONDENTS = ("attendee", "instructor")


def questions_for(kind: MeetingKind, respondent: str) -> tuple[Question, ...]:
    if kind in PICKUP_POINT_MEETINGS:
        return _INSTRUCTORS if respondent == "instructor" else _STAFF
    if kind is MeetingKind.INSTRUCTOR_TRAINING:
        return _TRAINING
    return _GROUP


ALL_QUESTIONS: dict[str, Question] = {
    q.key: q for group in (_STAFF, _INSTRUCTORS, _TRAINING, _GROUP) for q in group
}
