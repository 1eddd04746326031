"""The five steps as rules over facts (DOMAIN.md, "The five steps for a municipality").

Step 1 is the recorded decision. Steps 2–5 are read from the data, never typed in:
2. instructors: at least one person qualified by an instructor training (employed in the
   municipality, an instructor in one of its local networks, or booked for one of its meetings);
3. working group: a local working group with at least WORKING_GROUP_MIN_MEMBERS current members;
4. collaboration meetings: at least one collaboration (or, in sparse places, workplace) meeting held;
5. follow-up: a follow-up meeting with the shops held, or the local working group meeting again
   after the first collaboration meeting.
The map's colour is `current_step`: how many steps are done in order from step 1, so a
municipality that holds meetings without a recorded decision shows that the decision is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from service.reports import schemas
from service.reports.models import EXPECTED_PARTIES, DecidingParty, MunicipalityDecision
from service.reports.repository import CoverageCounts, Fact

WORKING_GROUP_MIN_MEMBERS = 2
STEP_KEYS = ("decision", "instructors", "working_group", "collaboration_meetings", "follow_up")


def decision_out(decision: MunicipalityDecision) -> schemas.Decision:
    parties = {DecidingParty(b["party"]) for b in decision.bodies}
    return schemas.Decision(
        municipality_code=decision.municipality_code,
        decided_on=decision.decided_on,
        bodies=[
            schemas.DecidingBodyOut(party=DecidingParty(b["party"]), name=b["name"]) for b in decision.bodies
        ],
        document_reference=decision.document_reference,
        note=decision.note,
        missing_parties=[p for p in EXPECTED_PARTIES if p not in parties],
        updated_at=decision.updated_at,
    )


def _first(*days: date | None) -> date | None:
    present = [d for d in days if d is not None]
    return min(present) if present else None


def _latest(*days: date | None) -> date | None:
    present = [d for d in days if d is not None]
    return max(present) if present else None


def steps(
    decision: MunicipalityDecision | None,
    instructors: Fact | None,
    working_group: Fact | None,
    collaboration: Fact | None,
    follow_up_meetings: Fact | None,
    group_follow_ups: Fact | None,
) -> list[schemas.StepStatus]:
    out: list[schemas.StepStatus] = []
    if decision is None:
        out.append(
            schemas.StepStatus(
                step=1, key="decision", done=False, since=None, evidence="no decision recorded", count=0
            )
        )
    else:
        bodies = ", ".join(b["name"] for b in decision.bodies)
        out.append(
            schemas.StepStatus(
                step=1,
                key="decision",
                done=True,
                since=decision.decided_on,
                evidence=f"decided by {bodies}; {decision.document_reference}",
                count=len(decision.bodies),
                latest=decision.decided_on,
            )
        )
    f = instructors or Fact()
    out.append(
        schemas.StepStatus(
            step=2,
            key="instructors",
            done=f.count > 0,
            since=f.first if f.count else None,
            evidence=f"{f.count} qualified instructor(s)"
            + (f"; first qualified {f.first}" if f.first else ""),
            count=f.count,
            latest=f.latest,
        )
    )
    f = working_group or Fact()
    out.append(
        schemas.StepStatus(
            step=3,
            key="working_group",
            done=f.count >= WORKING_GROUP_MIN_MEMBERS,
            since=f.first if f.count >= WORKING_GROUP_MIN_MEMBERS else None,
            evidence=f"local working group with {f.count} current member(s)"
            if f.count
            else "no local working group with members",
            count=f.count,
            latest=f.latest,
        )
    )
    f = collaboration or Fact()
    out.append(
        schemas.StepStatus(
            step=4,
            key="collaboration_meetings",
            done=f.count > 0,
            since=f.first,
            evidence=f"{f.count} collaboration meeting(s) held"
            + (f"; latest {f.latest}" if f.latest else ""),
            count=f.count,
            latest=f.latest,
        )
    )
    meetings, group = follow_up_meetings or Fact(), group_follow_ups or Fact()
    parts = []
    if meetings.count:
        parts.append(f"{meetings.count} follow-up meeting(s) with the pickup points")
    if group.count:
        parts.append(f"{group.count} working group meeting(s) after the first collaboration meeting")
    out.append(
        schemas.StepStatus(
            step=5,
            key="follow_up",
            done=bool(meetings.count or group.count),
            since=_first(meetings.first, group.first),
            evidence="; ".join(parts) if parts else "no follow-up held yet",
            count=meetings.count + group.count,
            latest=_latest(meetings.latest, group.latest),
        )
    )
    return out


def current_step(statuses: Iterable[schemas.StepStatus]) -> int:
    reached = 0
    for status in sorted(statuses, key=lambda s: s.step):
        if not status.done:
            break
        reached = status.step
    return reached


def share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def coverage_fields(c: CoverageCounts) -> dict[str, Any]:
    total = c.pickup_points + c.terminals + c.offices
    return {
        "pickup_points": c.pickup_points,
        "terminals": c.terminals,
        "offices": c.offices,
        "total": total,
        "invited": c.invited,
        "attended": c.attended,
        "certified": c.certified,
        "follow_up_due": c.follow_up_due,
        "lapsed": c.lapsed,
        "never_reached": c.never_reached,
        "certified_share": share(c.certified, total),
    }


def add(into: CoverageCounts, other: CoverageCounts) -> None:
    for field in CoverageCounts.__dataclass_fields__:
        setattr(into, field, getattr(into, field) + getattr(other, field))
