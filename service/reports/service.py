"""Reports: where each municipality stands in the method, which places were reached, what the
surveys say. Scope decides the places: a municipal coordinator's reports hold their municipality,
a county coordinator's their county; a roll-up is shown only for a group the scope covers whole."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Literal
from uuid import UUID

import msgspec

from service.context import Context
from service.meetings.models import Meeting, MeetingKind, SurveyResponse
from service.meetings.questions import ALL_QUESTIONS
from service.meetings.times import local
from service.organizations.models import Organization
from service.pagination import Ordering, fetch_page
from service.problems import invalid, not_found
from service.reports import rules, schemas
from service.reports.models import MunicipalityDecision
from service.reports.repository import COLLABORATION_KINDS, CoverageCounts, Place, ReportRepository
from service.versioning import check_if_match, etag_of

Group = Literal["meeting", "municipality", "county", "nation"]
Period = Literal["month", "quarter", "year"]
NATION = ("SE", "Sverige")
BY_NAME = Ordering("unreached", (Organization.name, Organization.id), ("name", "id"))


@dataclass(frozen=True, slots=True)
class Selection:
    """The municipalities a report covers, after scope and filters."""

    places: list[Place]
    # None when the report is national and unfiltered (the queries then need no IN list).
    codes: frozenset[str] | None
    county_codes: frozenset[str]


def decision_etag(decision: MunicipalityDecision) -> str:
    return etag_of("decision", decision.municipality_code, decision.version)


def _period(day: date, period: Period) -> str:
    if period == "month":
        return day.strftime("%Y-%m")
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


class ReportService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = ReportRepository(ctx.session)

    def today(self) -> date:
        return local(self.ctx.clock()).date()

    async def select(
        self,
        *,
        municipality: str | None = None,
        county: str | None = None,
        police_region: str | None = None,
    ) -> Selection:
        places = await self.repo.places()
        scope = self.ctx.principal.scope
        if county is not None and not any(p.county_code == county for p in places):
            raise invalid("county", f"no county {county}", "query")
        if police_region is not None and not any(p.police_region == police_region for p in places):
            regions = ", ".join(sorted({p.police_region for p in places}))
            raise invalid("police_region", f"no police region {police_region!r}; one of {regions}", "query")
        visible = [p for p in places if scope.covers_municipality(p.code, p.county_code)]
        if municipality is not None:
            visible = [p for p in visible if p.code == municipality]
            if not visible:  # unknown, or outside the scope: the same answer (foreign things are 404)
                raise not_found("municipality", municipality)
        if county is not None:
            visible = [p for p in visible if p.county_code == county]
        if police_region is not None:
            visible = [p for p in visible if p.police_region == police_region]
        whole = scope.nation and municipality is None and county is None and police_region is None
        return Selection(
            places=visible,
            codes=None if whole else frozenset(p.code for p in visible),
            county_codes=frozenset(p.county_code for p in visible) if scope.nation else scope.county_codes,
        )

    # --- progress --------------------------------------------------------------------------------

    async def progress(self, selection: Selection) -> list[schemas.MunicipalityProgress]:
        codes = selection.codes
        decisions = await self.repo.decisions(codes)
        instructors = await self.repo.instructors(codes)
        groups = await self.repo.working_groups(codes)
        collaboration = await self.repo.held_meetings(codes, COLLABORATION_KINDS)
        follow_ups = await self.repo.held_meetings(codes, (MeetingKind.FOLLOW_UP_MEETING,))
        group_follow_ups = await self.repo.working_group_follow_ups(codes)
        out = []
        for place in selection.places:
            decision = decisions.get(place.code)
            steps = rules.steps(
                decision,
                instructors.get(place.code),
                groups.get(place.code),
                collaboration.get(place.code),
                follow_ups.get(place.code),
                group_follow_ups.get(place.code),
            )
            out.append(
                schemas.MunicipalityProgress(
                    municipality_code=place.code,
                    municipality_name=place.name,
                    county_code=place.county_code,
                    police_region=place.police_region,
                    current_step=rules.current_step(steps),
                    steps_done=sum(1 for s in steps if s.done),
                    steps=steps,
                    decision=rules.decision_out(decision) if decision else None,
                )
            )
        return out

    def _groups(self, level: schemas.RollupLevel, places: list[Place]) -> list[tuple[str, str, list[Place]]]:
        """The roll-up groups the scope covers whole, each with its municipalities."""
        scope = self.ctx.principal.scope
        grouped: dict[tuple[str, str], list[Place]] = defaultdict(list)
        for place in places:
            if level == "county":
                grouped[(place.county_code, place.county_name)].append(place)
            elif level == "police_region":
                grouped[(place.police_region, f"Polisregion {place.police_region}")].append(place)
            else:
                grouped[NATION].append(place)
        covered = []
        for (code, name), members in sorted(grouped.items()):
            whole = scope.nation or (level == "county" and code in scope.county_codes)
            if whole:
                covered.append((code, name, members))
        return covered

    async def progress_rollup(
        self, selection: Selection, level: schemas.RollupLevel
    ) -> list[schemas.ProgressRollup]:
        rows = {p.municipality_code: p for p in await self.progress(selection)}
        out = []
        for code, name, members in self._groups(level, selection.places):
            by_step = [0] * 6
            done = [0] * 5
            for place in members:
                row = rows[place.code]
                by_step[row.current_step] += 1
                for status in row.steps:
                    done[status.step - 1] += int(status.done)
            out.append(
                schemas.ProgressRollup(
                    level=level,
                    code=code,
                    name=name,
                    municipalities=len(members),
                    by_current_step=by_step,
                    steps_done=done,
                    complete_share=rules.share(by_step[5], len(members)),
                )
            )
        return out

    # --- coverage --------------------------------------------------------------------------------

    async def _coverage_counts(self, selection: Selection) -> dict[str, CoverageCounts]:
        return await self.repo.coverage(selection.codes, self.today())

    async def coverage(self, selection: Selection) -> list[schemas.MunicipalityCoverage]:
        counts = await self._coverage_counts(selection)
        return [
            schemas.MunicipalityCoverage(
                municipality_code=p.code,
                municipality_name=p.name,
                county_code=p.county_code,
                police_region=p.police_region,
                **rules.coverage_fields(counts.get(p.code, CoverageCounts())),
            )
            for p in selection.places
        ]

    async def coverage_rollup(
        self, selection: Selection, level: schemas.RollupLevel
    ) -> list[schemas.CoverageRollup]:
        counts = await self._coverage_counts(selection)
        out = []
        for code, name, members in self._groups(level, selection.places):
            total = CoverageCounts()
            for place in members:
                rules.add(total, counts.get(place.code, CoverageCounts()))
            out.append(
                schemas.CoverageRollup(
                    level=level,
                    code=code,
                    name=name,
                    municipalities=len(members),
                    **rules.coverage_fields(total),
                )
            )
        return out

    async def unreached_page(
        self, selection: Selection, *, limit: int, cursor: str | None
    ) -> schemas.UnreachedPage:
        stmt = self.repo.unreached(selection.codes, self.today())
        orgs, next_cursor = await fetch_page(self.ctx.session, stmt, BY_NAME, limit=limit, cursor=cursor)
        return schemas.UnreachedPage(
            items=await self._unreached_out(orgs), limit=limit, next_cursor=next_cursor
        )

    async def unreached_all(self, selection: Selection) -> list[schemas.UnreachedPoint]:
        stmt = self.repo.unreached(selection.codes, self.today()).order_by(Organization.name, Organization.id)
        return await self._unreached_out(list(await self.ctx.session.scalars(stmt)))

    async def _unreached_out(self, orgs: list[Organization]) -> list[schemas.UnreachedPoint]:
        carriers = await self.repo.carriers_of([o.id for o in orgs])
        return [
            schemas.UnreachedPoint(
                id=o.id,
                kind=o.kind.value,
                name=o.name,
                street_address=o.street_address,
                postal_code=o.postal_code,
                city=o.city,
                municipality_code=o.municipality_code or "",
                latitude=o.latitude,
                longitude=o.longitude,
                carriers=carriers[o.id],
            )
            for o in orgs
        ]

    async def point_statuses(self, code: str) -> list[tuple[Organization, str]]:
        return await self.repo.point_statuses(code, self.today())

    # --- evaluations -----------------------------------------------------------------------------

    async def evaluations(
        self,
        selection: Selection,
        *,
        group: Group,
        period: Period,
        since: date | None,
        until: date | None,
    ) -> schemas.EvaluationReport:
        if since is not None and until is not None and since > until:
            raise invalid("until", "must not be before since", "query")
        rows = await self.repo.survey_responses(selection.codes, selection.county_codes, since, until)
        names = {p.code: p.name for p in selection.places}
        county_names = {p.county_code: p.county_name for p in selection.places}
        regional = await self.repo.meeting_counties({m.id for _, m in rows if m.municipality_code is None})
        buckets: dict[tuple[str, str], list[tuple[SurveyResponse, Meeting]]] = defaultdict(list)
        labels: dict[str, str] = {}
        for response, meeting in rows:
            for code, label in self._groups_of(group, meeting, regional, names, county_names):
                labels[code] = label
                buckets[(code, _period(response.submitted_on, period))].append((response, meeting))
        out: list[schemas.EvaluationRow] = []
        previous: dict[str, float | None] = {}
        for (code, when), answers in sorted(buckets.items()):
            row = _evaluation_row(group, code, labels[code], when, answers, previous.get(code))
            previous[code] = row.mean if row.mean is not None else previous.get(code)
            out.append(row)
        return schemas.EvaluationReport(
            group=group, period=period, since=since, until=until, responses=len(rows), rows=out
        )

    @staticmethod
    def _groups_of(
        group: Group,
        meeting: Meeting,
        regional: dict[UUID, list[str]],
        names: dict[str, str],
        county_names: dict[str, str],
    ) -> list[tuple[str, str]]:
        if group == "meeting":
            return [(str(meeting.id), meeting.title)]
        if group == "nation":
            return [NATION]
        if group == "municipality":
            code = meeting.municipality_code
            return [(code, names[code])] if code in names else []
        counties = (
            [meeting.municipality_code[:2]] if meeting.municipality_code else regional.get(meeting.id, [])
        )
        return [(c, county_names[c]) for c in counties if c in county_names]

    # --- step 1: the decision --------------------------------------------------------------------

    async def decision(self, code: str) -> MunicipalityDecision:
        await self.select(municipality=code)
        found = (await self.repo.decisions([code])).get(code)
        if found is None:
            raise not_found("decision of municipality", code)
        return found

    async def record_decision(
        self, code: str, data: schemas.DecisionWrite, if_match: str | None
    ) -> tuple[MunicipalityDecision, bool]:
        """Create or replace the decision; True when it was created."""
        await self.select(municipality=code)
        if data.decided_on > self.today():
            raise invalid("decided_on", "a decision cannot be in the future")
        if len({(b.party, b.name.strip().casefold()) for b in data.bodies}) != len(data.bodies):
            raise invalid("bodies", "a body is listed twice")
        found = (await self.repo.decisions([code])).get(code)
        bodies = [msgspec.to_builtins(b) for b in data.bodies]
        if found is None:
            if if_match is not None and if_match.strip() != "*":
                raise invalid("If-Match", "there is no decision yet to match", "header")
            found = MunicipalityDecision(
                municipality_code=code,
                decided_on=data.decided_on,
                bodies=bodies,
                document_reference=data.document_reference.strip(),
                note=data.note,
            )
            self.ctx.session.add(found)
            await self.ctx.session.flush()
            return found, True
        check_if_match(if_match, decision_etag(found))
        found.decided_on = data.decided_on
        found.bodies = bodies
        found.document_reference = data.document_reference.strip()
        found.note = data.note
        await self.ctx.session.flush()
        return found, False

    async def remove_decision(self, code: str, if_match: str | None) -> None:
        found = await self.decision(code)
        check_if_match(if_match, decision_etag(found))
        await self.ctx.session.delete(found)
        await self.ctx.session.flush()


def _evaluation_row(
    group: Group,
    code: str,
    name: str,
    period: str,
    answers: list[tuple[SurveyResponse, Meeting]],
    previous: float | None,
) -> schemas.EvaluationRow:
    per_question: dict[str, list[int]] = defaultdict(list)
    every: list[int] = []
    for response, _ in answers:
        for key, value in response.answers.items():
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
                per_question[key].append(value)
                every.append(value)
    order = list(ALL_QUESTIONS)
    questions = [
        schemas.QuestionMean(
            key=key,
            text=ALL_QUESTIONS[key].sv if key in ALL_QUESTIONS else key,
            responses=len(values),
            mean=_mean(values),
        )
        for key, values in sorted(
            per_question.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
        )
    ]
    mean = _mean(every)
    return schemas.EvaluationRow(
        group=group,
        code=code,
        name=name,
        period=period,
        meetings=len({m.id for _, m in answers}),
        responses=len(answers),
        mean=mean,
        change=round(mean - previous, 2) if mean is not None and previous is not None else None,
        questions=questions,
    )
