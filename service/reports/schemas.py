from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.pagination import Page
from service.reports.models import DecidingParty
from service.schemas import Input, Output

Step = Annotated[int, msgspec.Meta(ge=0, le=5)]
RollupLevel = Literal["county", "police_region", "nation"]


# --- step 1: the decision, typed in ---------------------------------------------------------------


class DecidingBody(Input):
    party: DecidingParty
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Kommunstyrelsen"])]


class DecisionWrite(Input):
    decided_on: date
    bodies: Annotated[list[DecidingBody], msgspec.Meta(min_length=1, max_length=10)]
    document_reference: Annotated[
        str, msgspec.Meta(min_length=1, max_length=300, examples=["KS 2026/123 § 45"])
    ]
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class DecidingBodyOut(Output):
    party: DecidingParty
    name: str


class Decision(Output):
    municipality_code: str
    decided_on: date
    bodies: list[DecidingBodyOut]
    document_reference: str
    note: str | None
    # The parties the method expects (municipality, police, customs) that no body stands for.
    missing_parties: list[DecidingParty]
    updated_at: datetime


# --- progress ------------------------------------------------------------------------------------


class StepStatus(Output):
    """One of the five steps: done or not, since when, and what shows it."""

    step: Step
    key: Literal["decision", "instructors", "working_group", "collaboration_meetings", "follow_up"]
    done: bool
    # The day the step was first reached (the decision's day, the first qualification, …).
    since: date | None
    # What the step rests on, in words (e.g. "3 qualified instructors; first 2026-03-04").
    evidence: str
    count: int
    # The day of the newest evidence (the latest meeting held, the latest qualification).
    latest: date | None = None


class MunicipalityProgress(Output):
    municipality_code: str
    municipality_name: str
    county_code: str
    police_region: str
    # How many steps are done in order from step 1: what the map colours (0 = not started).
    current_step: Step
    steps_done: Annotated[int, msgspec.Meta(ge=0, le=5)]
    steps: list[StepStatus]
    decision: Decision | None


class ProgressRollup(Output):
    level: RollupLevel
    code: str  # county code, police region name, or "SE"
    name: str
    municipalities: int
    # Municipalities per current step: index 0 = not started … index 5 = all five steps in order.
    by_current_step: list[int]
    # Municipalities with each step done (in any order): index 0 = step 1 … index 4 = step 5.
    steps_done: list[int]
    # Share of the municipalities that have reached all five steps, 0–1.
    complete_share: float


# --- coverage ------------------------------------------------------------------------------------


class Coverage(Output):
    """Where the parcel places stand. Every count is of active places (closed shops are out)."""

    pickup_points: int
    terminals: int
    offices: int
    total: int
    # Sent at least one invitation to a meeting of the method.
    invited: int
    # Staff attended a collaboration, workplace or follow-up meeting.
    attended: int
    # Holding a certification now: active, follow-up due or in its grace period.
    certified: int
    # Of those, the ones whose renewal window has opened or whose grace period runs.
    follow_up_due: int
    lapsed: int
    # Neither invited, nor attended, nor certified: the next invitation's list.
    never_reached: int
    certified_share: float


class MunicipalityCoverage(Coverage):
    municipality_code: str
    municipality_name: str
    county_code: str
    police_region: str


class CoverageRollup(Coverage):
    level: RollupLevel
    code: str
    name: str
    municipalities: int


class UnreachedPoint(Output):
    id: UUID
    kind: str
    name: str
    street_address: str | None
    postal_code: str | None
    city: str | None
    municipality_code: str
    latitude: float | None
    longitude: float | None
    carriers: list[str]


class UnreachedPage(Page[UnreachedPoint]):
    items: list[UnreachedPoint]


# --- evaluations ---------------------------------------------------------------------------------


class QuestionMean(Output):
    key: str
    text: str
    responses: int
    mean: float | None


class EvaluationRow(Output):
    """Survey answers of one group (a meeting, a municipality, a county, the nation) in one period."""

    group: Literal["meeting", "municipality", "county", "nation"]
    code: str  # the meeting's id, the municipality or county code, or "SE"
    name: str
    period: str  # 2026-03, 2026-Q1 or 2026
    meetings: int
    responses: int
    mean: float | None
    # The mean's change from this group's previous period with answers (null for the first).
    change: float | None
    questions: list[QuestionMean]


class EvaluationReport(Output):
    group: Literal["meeting", "municipality", "county", "nation"]
    period: Literal["month", "quarter", "year"]
    since: date | None
    until: date | None
    responses: int
    rows: list[EvaluationRow]


# --- the reports as answered -------------------------------------------------------------------


class ProgressReport(Output):
    as_of: date
    municipalities: list[MunicipalityProgress]


class ProgressRollupReport(Output):
    as_of: date
    level: RollupLevel
    groups: list[ProgressRollup]


class CoverageReport(Output):
    as_of: date
    municipalities: list[MunicipalityCoverage]


class CoverageRollupReport(Output):
    as_of: date
    level: RollupLevel
    groups: list[CoverageRollup]
