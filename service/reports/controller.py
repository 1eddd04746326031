from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, delete, get, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.http import (
    READ_ERRORS,
    Cursor,
    IfMatch,
    Limit,
    created_response,
    page_response,
    problem_responses,
    resource_response,
)
from service.reports import exports, rules, schemas
from service.reports.exports import CSV_MEDIA_TYPE, GEOJSON_MEDIA_TYPE, Delimiter
from service.reports.service import Group, Period, ReportService, Selection, decision_etag

READ = requires(Permission.REPORTS_READ)
WRITE = requires(Permission.DECISIONS_WRITE)
WRITE_ERRORS = problem_responses(403, 404, 412, 422)
# A municipality asked for by name that does not exist, or not for the caller, is a 404.
REPORT_ERRORS = problem_responses(400, 404, 422)

Code = Annotated[str, PathParameter(pattern=r"^[0-9]{4}$", description="Four-digit municipality code")]
Municipality = Annotated[
    str | None, QueryParameter(pattern=r"^[0-9]{4}$", description="Only this municipality")
]
County = Annotated[str | None, QueryParameter(pattern=r"^[0-9]{2}$", description="Only this county")]
PoliceRegion = Annotated[
    str | None, QueryParameter(max_length=50, description="Only this police region (e.g. Nord)")
]
Level = Annotated[
    schemas.RollupLevel, QueryParameter(description="Group by county, police region or the nation")
]
Sep = Annotated[
    Delimiter,
    QueryParameter(description="comma (RFC 4180), or semicolon for spreadsheets set to Swedish conventions"),
]


@dataclass(frozen=True, slots=True)
class Report:
    """What a report handler works on: the service, and the municipalities after scope and filters."""

    service: ReportService
    selection: Selection


async def provide_report(
    ctx: RequestContext,
    municipality: Municipality = None,
    county: County = None,
    police_region: PoliceRegion = None,
) -> Report:
    service = ReportService(ctx)
    return Report(
        service, await service.select(municipality=municipality, county=county, police_region=police_region)
    )


async def provide_rollup(
    ctx: RequestContext, county: County = None, police_region: PoliceRegion = None
) -> Report:
    """Roll-ups group whole counties and regions: no single municipality to narrow to."""
    service = ReportService(ctx)
    return Report(service, await service.select(county=county, police_region=police_region))


def _csv(text: str, name: str) -> Response[str]:
    return Response(
        text, media_type=CSV_MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
    )


def _geojson(body: bytes) -> Response[dict[str, Any]]:
    # Encoded already (boundaries are large); documented as the FeatureCollection object it is.
    return cast("Response[dict[str, Any]]", Response(body, media_type=GEOJSON_MEDIA_TYPE))


def _members(selection: Selection, level: schemas.RollupLevel) -> dict[str, frozenset[str]]:
    members: dict[str, set[str]] = {}
    for p in selection.places:
        key = {"county": p.county_code, "police_region": p.police_region}.get(level, "SE")
        members.setdefault(key, set()).add(p.code)
    return {k: frozenset(v) for k, v in members.items()}


async def provide_evaluation(
    report: NamedDependency[Report],
    group: Annotated[Group, QueryParameter(description="What a row is")] = "municipality",
    period: Annotated[Period, QueryParameter(description="How time is cut")] = "quarter",
    since: Annotated[date | None, QueryParameter(description="Answers from this day")] = None,
    until: Annotated[date | None, QueryParameter(description="Answers to this day")] = None,
) -> schemas.EvaluationReport:
    return await report.service.evaluations(
        report.selection, group=group, period=period, since=since, until=until
    )


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["Reports"]
    dependencies = {
        "report": Provide(provide_report),
        "rollup": Provide(provide_rollup),
        "evaluation": Provide(provide_evaluation),
    }

    # --- progress ------------------------------------------------------------------------------

    @get(
        "/progress",
        **READ,
        summary="Five-step progress per municipality, with evidence",
        responses=REPORT_ERRORS,
    )
    async def progress(
        self,
        report: NamedDependency[Report],
    ) -> schemas.ProgressReport:
        service, selection = report.service, report.selection
        return schemas.ProgressReport(as_of=service.today(), municipalities=await service.progress(selection))

    @get(
        "/progress.csv",
        **READ,
        summary="Five-step progress as CSV, a row per municipality",
        media_type=CSV_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def progress_csv(
        self,
        report: NamedDependency[Report],
        delimiter: Sep = "comma",
    ) -> Response[str]:
        service, selection = report.service, report.selection
        rows = [exports.progress_row(p) for p in await service.progress(selection)]
        return _csv(exports.csv_text(rows, delimiter=delimiter), "progress")

    @get(
        "/progress.geojson",
        **READ,
        summary="Five-step progress as GeoJSON: municipality boundaries with the CSV's columns",
        media_type=GEOJSON_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def progress_geojson(
        self,
        report: NamedDependency[Report],
    ) -> Response[dict[str, Any]]:
        service, selection = report.service, report.selection
        rows = [exports.progress_row(p) for p in await service.progress(selection)]
        return _geojson(exports.municipality_features(rows))

    @get(
        "/progress/rollup",
        **READ,
        summary="Progress rolled up per county, police region or the nation (the groups your scope covers)",
        responses=REPORT_ERRORS,
    )
    async def progress_rollup(
        self,
        rollup: NamedDependency[Report],
        level: Level = "county",
    ) -> schemas.ProgressRollupReport:
        service, selection = rollup.service, rollup.selection
        groups = await service.progress_rollup(selection, level)
        return schemas.ProgressRollupReport(as_of=service.today(), level=level, groups=groups)

    @get(
        "/progress/rollup.csv",
        **READ,
        summary="Progress rolled up, as CSV",
        media_type=CSV_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def progress_rollup_csv(
        self,
        rollup: NamedDependency[Report],
        level: Level = "county",
        delimiter: Sep = "comma",
    ) -> Response[str]:
        service, selection = rollup.service, rollup.selection
        rows = [exports.progress_rollup_row(r) for r in await service.progress_rollup(selection, level)]
        return _csv(exports.csv_text(rows, delimiter=delimiter), f"progress-{level}")

    @get(
        "/progress/rollup.geojson",
        **READ,
        summary="Progress rolled up, as GeoJSON (counties and regions as unions of their municipalities)",
        media_type=GEOJSON_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def progress_rollup_geojson(
        self,
        rollup: NamedDependency[Report],
        level: Level = "county",
    ) -> Response[dict[str, Any]]:
        service, selection = rollup.service, rollup.selection
        rows = [exports.progress_rollup_row(r) for r in await service.progress_rollup(selection, level)]
        return _geojson(exports.group_features(rows, _members(selection, level)))

    # --- coverage ------------------------------------------------------------------------------

    @get(
        "/coverage",
        **READ,
        summary="Pickup-point coverage per municipality: invited, attended, certified, due, lapsed, …",
        responses=REPORT_ERRORS,
    )
    async def coverage(
        self,
        report: NamedDependency[Report],
    ) -> schemas.CoverageReport:
        service, selection = report.service, report.selection
        return schemas.CoverageReport(as_of=service.today(), municipalities=await service.coverage(selection))

    @get(
        "/coverage.csv", **READ, summary="Coverage as CSV", media_type=CSV_MEDIA_TYPE, responses=REPORT_ERRORS
    )
    async def coverage_csv(
        self,
        report: NamedDependency[Report],
        delimiter: Sep = "comma",
    ) -> Response[str]:
        service, selection = report.service, report.selection
        rows = [exports.plain_row(c) for c in await service.coverage(selection)]
        return _csv(exports.csv_text(rows, delimiter=delimiter), "coverage")

    @get(
        "/coverage.geojson",
        **READ,
        summary="Coverage as GeoJSON: municipality boundaries with the CSV's columns",
        media_type=GEOJSON_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def coverage_geojson(
        self,
        report: NamedDependency[Report],
    ) -> Response[dict[str, Any]]:
        service, selection = report.service, report.selection
        rows = [exports.plain_row(c) for c in await service.coverage(selection)]
        return _geojson(exports.municipality_features(rows))

    @get(
        "/coverage/rollup",
        **READ,
        summary="Coverage rolled up per county, police region or the nation (the groups your scope covers)",
        responses=REPORT_ERRORS,
    )
    async def coverage_rollup(
        self,
        rollup: NamedDependency[Report],
        level: Level = "county",
    ) -> schemas.CoverageRollupReport:
        service, selection = rollup.service, rollup.selection
        groups = await service.coverage_rollup(selection, level)
        return schemas.CoverageRollupReport(as_of=service.today(), level=level, groups=groups)

    @get(
        "/coverage/rollup.csv",
        **READ,
        summary="Coverage rolled up, as CSV",
        media_type=CSV_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def coverage_rollup_csv(
        self,
        rollup: NamedDependency[Report],
        level: Level = "county",
        delimiter: Sep = "comma",
    ) -> Response[str]:
        service, selection = rollup.service, rollup.selection
        rows = [exports.plain_row(r) for r in await service.coverage_rollup(selection, level)]
        return _csv(exports.csv_text(rows, delimiter=delimiter), f"coverage-{level}")

    @get(
        "/coverage/rollup.geojson",
        **READ,
        summary="Coverage rolled up, as GeoJSON",
        media_type=GEOJSON_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def coverage_rollup_geojson(
        self,
        rollup: NamedDependency[Report],
        level: Level = "county",
    ) -> Response[dict[str, Any]]:
        service, selection = rollup.service, rollup.selection
        rows = [exports.plain_row(r) for r in await service.coverage_rollup(selection, level)]
        return _geojson(exports.group_features(rows, _members(selection, level)))

    @get(
        "/coverage/unreached",
        **READ,
        summary="Active places never invited, attended or certified: the next invitation's list, by name",
        responses=REPORT_ERRORS,
    )
    async def unreached(
        self,
        request: Request[Any, Any, Any],
        report: NamedDependency[Report],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.UnreachedPage]:
        service, selection = report.service, report.selection
        return page_response(request, await service.unreached_page(selection, limit=limit, cursor=cursor))

    @get(
        "/coverage/unreached.csv",
        **READ,
        summary="Every place never reached, as CSV (for a mail merge or a route)",
        media_type=CSV_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def unreached_csv(
        self,
        report: NamedDependency[Report],
        delimiter: Sep = "comma",
    ) -> Response[str]:
        service, selection = report.service, report.selection
        rows = [exports.plain_row(p) for p in await service.unreached_all(selection)]
        columns = list(schemas.UnreachedPoint.__struct_fields__)
        return _csv(exports.csv_text(rows, delimiter=delimiter, columns=columns), "never-reached")

    @get(
        "/coverage/unreached.geojson",
        **READ,
        summary="Every place never reached, as GeoJSON points",
        media_type=GEOJSON_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def unreached_geojson(
        self,
        report: NamedDependency[Report],
    ) -> Response[dict[str, Any]]:
        service, selection = report.service, report.selection
        return _geojson(exports.point_features(await service.unreached_all(selection)))

    # --- evaluations ---------------------------------------------------------------------------

    @get(
        "/evaluations",
        **READ,
        summary="Survey results per meeting, municipality, county or the nation, per period, with the change",
        responses=REPORT_ERRORS,
    )
    async def evaluations(
        self, evaluation: NamedDependency[schemas.EvaluationReport]
    ) -> schemas.EvaluationReport:
        return evaluation

    @get(
        "/evaluations.csv",
        **READ,
        summary="Survey results as CSV: a row per group and period, a mean and a count per question",
        media_type=CSV_MEDIA_TYPE,
        responses=REPORT_ERRORS,
    )
    async def evaluations_csv(
        self, evaluation: NamedDependency[schemas.EvaluationReport], delimiter: Sep = "comma"
    ) -> Response[str]:
        rows, columns = exports.evaluation_rows(evaluation)
        name = f"evaluations-{evaluation.group}-{evaluation.period}"
        return _csv(exports.csv_text(rows, delimiter=delimiter, columns=columns), name)


class DecisionController(Controller):
    """Step 1, typed in: the municipality's decision to use the method."""

    path = "/v1/municipalities/{code:str}"
    tags = ["Reports"]

    @get("/progress", **READ, summary="One municipality's five steps, with evidence", responses=READ_ERRORS)
    async def municipality_progress(self, ctx: RequestContext, code: Code) -> schemas.MunicipalityProgress:
        service = ReportService(ctx)
        selection = await service.select(municipality=code)
        return (await service.progress(selection))[0]

    @get(
        "/decision", **READ, summary="The recorded decision to use the method (step 1)", responses=READ_ERRORS
    )
    async def get_decision(
        self, request: Request[Any, Any, Any], ctx: RequestContext, code: Code
    ) -> Response[schemas.Decision]:
        decision = await ReportService(ctx).decision(code)
        return resource_response(request, rules.decision_out(decision), decision_etag(decision))

    @put(
        "/decision",
        **WRITE,
        summary="Record or replace the decision (date, deciding bodies, document reference)",
        responses={
            201: ResponseSpec(data_container=schemas.Decision, description="Recorded for the first time"),
            **WRITE_ERRORS,
        },
        status_code=200,
    )
    async def put_decision(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        code: Code,
        data: JSONBody[schemas.DecisionWrite],
        if_match: IfMatch = None,
    ) -> Response[schemas.Decision]:
        decision, created = await ReportService(ctx).record_decision(code, data, if_match)
        body, etag = rules.decision_out(decision), decision_etag(decision)
        if created:
            return created_response(request, body, etag, f"/v1/municipalities/{code}/decision")
        return resource_response(request, body, etag)

    @delete(
        "/decision",
        **WRITE,
        summary="Remove a decision recorded by mistake",
        responses=WRITE_ERRORS,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_decision(self, ctx: RequestContext, code: Code, if_match: IfMatch = None) -> None:
        await ReportService(ctx).remove_decision(code, if_match)
