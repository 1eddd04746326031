"""The coordinator's checklist per kind of meeting (appendix 3 of the method support document).

Items marked automatic tick themselves from what TMN sees (`FACTS`); the rest are ticked by hand.
A meeting gets its rows when it is scheduled, so a later change of a template leaves existing
meetings as they were planned.
"""

from __future__ import annotations

from typing import NamedTuple

from service.meetings.models import MeetingKind


class Item(NamedTuple):
    key: str
    sv: str
    en: str
    automatic: bool = False
    required: bool = True


_PICKUP_POINT_MEETING = (
    Item(
        "instructors_booked",
        "Kontakta polis och tull och bestäm datum; de deltar som instruktörer",
        "Agree on a date with police and customs; they take part as instructors",
        automatic=True,
    ),
    Item(
        "customs_instructor",
        "En instruktör från Tullverket är med (rekommenderas)",
        "A customs instructor takes part (recommended)",
        automatic=True,
        required=False,
    ),
    Item("venue_booked", "Boka lokal och eventuell fika", "Book a venue and refreshments"),
    Item("invitations_sent", "Skicka ut inbjudan", "Send the invitations", automatic=True),
    Item(
        "agent_managers_invited",
        "Bjud in logistikföretagens regionala ombudsansvariga",
        "Invite the carriers' regional agent managers",
        automatic=True,
    ),
    Item(
        "registrations_in",
        "Ta in anmälningar med namn och e-post",
        "Collect registrations with names and e-mail addresses",
        automatic=True,
    ),
    Item(
        "presentation_reviewed",
        "Gå igenom underlaget (presentationen från instruktörsutbildningen)",
        "Go through the presentation from the instructor training",
    ),
    Item(
        "local_adaptations",
        "Gör lokala anpassningar: lägesbild från polis och tull, drogläget i kommunen",
        "Adapt it locally: the police's and customs' picture, the drug situation in the municipality",
    ),
    Item(
        "logos_added",
        "Lägg till loggorna: länsstyrelsen, kommunen, Polismyndigheten, Tullverket",
        "Add the logos: county board, municipality, Police, Customs",
    ),
    Item(
        "materials_prepared",
        "Förbered material: folder, åhörarkopior, certifieringsdokument, dekaler",
        "Prepare handouts: folder, slides, certification documents, stickers",
    ),
    Item("meeting_held", "Genomför mötet", "Hold the meeting", automatic=True),
    Item("minutes_written", "Skriv korta minnesanteckningar", "Write short minutes", automatic=True),
    Item(
        "minutes_distributed",
        "Skicka minnesanteckningarna till deltagarna och nätverket",
        "Send the minutes to the attendees and the network",
        automatic=True,
    ),
    Item(
        "feedback_given",
        "Återkoppla till lokal arbetsgrupp och eventuell länsgrupp",
        "Report back to the local working group and the county group",
    ),
)

_GROUP_MEETING = (
    Item("date_agreed", "Bestäm datum med deltagarna", "Agree on a date with the participants"),
    Item("venue_booked", "Boka lokal eller digitalt möte", "Book a venue or an online meeting"),
    Item("invitations_sent", "Skicka ut inbjudan", "Send the invitations", automatic=True),
    Item("registrations_in", "Ta in anmälningar", "Collect registrations", automatic=True),
    Item("meeting_held", "Genomför mötet", "Hold the meeting", automatic=True),
    Item("minutes_written", "Skriv korta minnesanteckningar", "Write short minutes", automatic=True),
    Item(
        "minutes_distributed",
        "Skicka minnesanteckningarna till deltagarna och nätverket",
        "Send the minutes to the attendees and the network",
        automatic=True,
    ),
)

TEMPLATES: dict[MeetingKind, tuple[Item, ...]] = {
    kind: _PICKUP_POINT_MEETING
    if kind
    in (MeetingKind.COLLABORATION_MEETING, MeetingKind.WORKPLACE_MEETING, MeetingKind.FOLLOW_UP_MEETING)
    else _GROUP_MEETING
    for kind in MeetingKind
}
ITEMS: dict[str, Item] = {item.key: item for items in TEMPLATES.values() for item in items}
