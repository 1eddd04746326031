"""The dashboard: a read-only HTML view of the reports for signed-in coordinators.

Server-rendered, no script and no CDN: a map of the municipalities in scope coloured by step, and
a municipality's page with its steps, coverage and a map of its places by certification status.
Signing in takes the same credential the API takes (an API key or an identity provider's token),
checked on every page, so a revoked key stops working at once; the browser keeps it in a signed,
HttpOnly, SameSite=Strict cookie limited to /dashboard, for at most DASHBOARD_HOURS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.middleware import principal_for
from service.auth.permissions import PUBLIC, Permission, allowed
from service.auth.principal import Principal
from service.deps import context_for
from service.http import MunicipalityFilter
from service.problems import Problem
from service.reports import exports, maps
from service.reports.schemas import Decision, StepStatus, UnreachedPoint
from service.reports.service import ReportService
from service.signing import InvalidToken, sign, unsign

COOKIE = "tmn_dashboard"
DASHBOARD_HOURS = 8
STEP_COLOURS = ("#d9d9d9", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494")
STEP_LABELS = (
    "0 – inte påbörjad",
    "1 – beslut",
    "2 – instruktörer",
    "3 – arbetsgrupp",
    "4 – samverkansmöten",
    "5 – uppföljning",
)
STEP_NAMES = {
    "decision": "Beslut och förankring",
    "instructors": "Utbildade instruktörer",
    "working_group": "Lokal arbetsgrupp",
    "collaboration_meetings": "Samverkansmöten",
    "follow_up": "Uppföljning",
}
POINT_COLOURS = {
    "active": "#1a9850",
    "follow_up_due": "#fdae61",
    "in_grace": "#f46d43",
    "lapsed": "#d73027",
    "suspended": "#762a83",
    "revoked": "#40004b",
    "attended": "#4575b4",
    "invited": "#91bfdb",
    "never_reached": "#525252",
}
POINT_LABELS = {
    "active": "certifierad",
    "follow_up_due": "uppföljning nu",
    "in_grace": "i respitperiod",
    "lapsed": "förfallen",
    "suspended": "avstängd",
    "revoked": "återkallad",
    "attended": "har deltagit",
    "invited": "inbjuden",
    "never_reached": "aldrig nådd",
}
Code = Annotated[str, PathParameter(pattern=r"^[0-9]{4}$")]

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "pages"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)


def _page(template: str, status: int = 200, **values: Any) -> Response[str]:
    html = _ENV.get_template(template).render(**values)
    # Nothing here is for caches or frames: the pages show data for one signed-in person.
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers)


async def _signed_in(request: Request[Any, Any, Any]) -> Principal | None:
    """The principal of the dashboard cookie (or an Authorization header), None when absent."""
    header = request.headers.get("authorization", "")
    credential: str | None = header[7:].strip() if header.lower().startswith("bearer ") else None
    if credential is None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            credential = str(
                unsign(request.app.state.settings, "dashboard", raw, max_age_seconds=DASHBOARD_HOURS * 3600)
            )
        except InvalidToken:
            return None
    try:
        return await principal_for(request.app.state, credential)
    except Problem:
        return None


def evidence_sv(step: StepStatus, decision: Decision | None) -> str:
    """The step's evidence in Swedish, from its figures (the API's `evidence` is English)."""
    n = step.count
    if step.key == "decision":
        if decision is None:
            return "Inget beslut registrerat."
        bodies = ", ".join(b.name for b in decision.bodies)
        return f"Beslut av {bodies}; {decision.document_reference}."
    if step.key == "instructors":
        return (
            f"{n} kvalificerade instruktörer." if n else "Ingen kvalificerad instruktör knuten till kommunen."
        )
    if step.key == "working_group":
        return (
            f"Lokal arbetsgrupp med {n} aktuella medlemmar."
            if n
            else "Ingen lokal arbetsgrupp med medlemmar."
        )
    if step.key == "collaboration_meetings":
        latest = f", senast {step.latest}" if step.latest else ""
        return f"{n} samverkansmöten hållna{latest}." if n else "Inget samverkansmöte hållet."
    return f"{n} uppföljningar hållna." if n else "Ingen uppföljning hållen än."


def _scope_label(principal: Principal) -> str:
    scope = principal.scope
    if scope.nation:
        return "hela landet"
    codes = sorted(scope.municipality_codes) + [f"län {c}" for c in sorted(scope.county_codes)]
    return ", ".join(codes)


def _sign_in_redirect() -> Response[Any]:
    return Redirect("/dashboard/sign-in", status_code=303)


async def _reader(request: Request[Any, Any, Any], *, page: bool = True) -> Principal | Response[Any]:
    """Who reads the dashboard, or the answer instead: to the sign-in when nobody is signed in;
    a 403 (a page, or a problem for a download) when the role may not read reports."""
    principal = await _signed_in(request)
    if principal is None:
        return _sign_in_redirect()
    if not allowed(principal, Permission.REPORTS_READ):
        if not page:
            raise Problem("forbidden", "your role may not read reports")
        return _page("base.html", 403, error="Din roll har inte tillgång till lägesbilden.", signed_in=True)
    return principal


class DashboardController(Controller):
    path = "/dashboard"
    include_in_schema = False

    @get("/sign-in", **PUBLIC, media_type=MediaType.HTML)
    async def sign_in_form(self) -> Response[str]:
        return _page("sign_in.html", hours=DASHBOARD_HOURS)

    @post("/sign-in", **PUBLIC, media_type=MediaType.HTML, status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        credential = str(form.get("credential", "")).strip()
        try:
            if not credential or len(credential) > 8000:
                raise Problem("unauthorized", "empty or too long")
            principal = await principal_for(request.app.state, credential)
        except Problem:
            return _page("sign_in.html", 401, hours=DASHBOARD_HOURS, error="Nyckeln eller token gäller inte.")
        if not allowed(principal, Permission.REPORTS_READ):
            return _page(
                "sign_in.html",
                403,
                hours=DASHBOARD_HOURS,
                error="Din roll har inte tillgång till lägesbilden.",
            )
        settings = request.app.state.settings
        secure = request.url.scheme == "https" or settings.public_base_url.startswith("https://")
        cookie = Cookie(
            key=COOKIE,
            value=sign(settings, "dashboard", credential),
            path="/dashboard",
            max_age=DASHBOARD_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        return Redirect("/dashboard", status_code=303, cookies=[cookie])

    @post("/sign-out", **PUBLIC, media_type=MediaType.HTML, status_code=303)
    async def sign_out(self) -> Response[Any]:
        gone = Cookie(key=COOKIE, value="", path="/dashboard", max_age=0, httponly=True, samesite="strict")
        return Redirect("/dashboard/sign-in", status_code=303, cookies=[gone])

    @get("/", **PUBLIC, media_type=MediaType.HTML)
    async def overview(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        principal = await _reader(request)
        if isinstance(principal, Response):
            return principal
        scope = principal.scope
        if not scope.nation and not scope.county_codes and len(scope.municipality_codes) == 1:
            [code] = scope.municipality_codes
            return Redirect(f"/dashboard/municipalities/{code}", status_code=303)
        service = ReportService(context_for(request, db_session, principal))
        selection = await service.select()
        progress = await service.progress(selection)
        coverage = {c.municipality_code: c for c in await service.coverage(selection)}
        by_step = [0] * 6
        for p in progress:
            by_step[p.current_step] += 1
        fills = {p.municipality_code: STEP_COLOURS[p.current_step] for p in progress}
        titles = {p.municipality_code: f"{p.municipality_name}: steg {p.current_step} av 5" for p in progress}
        links = {p.municipality_code: f"/dashboard/municipalities/{p.municipality_code}" for p in progress}
        svg = (
            maps.municipality_map(
                fills,
                codes=list(fills),
                titles=titles,
                links=links,
                label="Kommunerna färgade efter steg i metoden",
            )
            if fills
            else ""
        )
        return _page(
            "overview.html",
            signed_in=True,
            scope_label=_scope_label(principal),
            as_of=service.today(),
            places=progress,
            coverage=coverage,
            county_names={p.county_code: p.county_name for p in selection.places},
            by_step=by_step,
            step_labels=STEP_LABELS,
            totals=_sum_coverage(coverage.values()),
            map=svg,
            legend=maps.legend(
                {str(n): c for n, c in enumerate(STEP_COLOURS)},
                {str(n): t for n, t in enumerate(STEP_LABELS)},
            ),
        )

    @get("/municipalities/{code:str}", **PUBLIC, media_type=MediaType.HTML)
    async def municipality(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], code: Code
    ) -> Response[Any]:
        principal = await _reader(request)
        if isinstance(principal, Response):
            return principal
        service = ReportService(context_for(request, db_session, principal))
        try:
            selection = await service.select(municipality=code)
        except Problem:
            return _page("base.html", 404, error=f"Ingen kommun {code} i din lägesbild.", signed_in=True)
        [progress] = await service.progress(selection)
        [coverage] = await service.coverage(selection)
        points = await service.point_statuses(code)
        map_points = [
            maps.MapPoint(
                latitude=o.latitude,
                longitude=o.longitude,
                category=category,
                title=f"{o.name}: {POINT_LABELS.get(category, category)}",
            )
            for o, category in points
        ]
        svg = maps.points_map(
            code, map_points, colours=POINT_COLOURS, label=f"Utlämningsställen i {progress.municipality_name}"
        )
        present = {category for _, category in points}
        legend = maps.legend(
            {k: v for k, v in POINT_COLOURS.items() if k in present},
            {k: v for k, v in POINT_LABELS.items() if k in present},
        )
        scope = principal.scope
        return _page(
            "municipality.html",
            signed_in=True,
            scope_label=_scope_label(principal),
            back=scope.nation or bool(scope.county_codes) or len(scope.municipality_codes) > 1,
            as_of=service.today(),
            progress=progress,
            county_name=selection.places[0].county_name,
            coverage=coverage,
            step_names=STEP_NAMES,
            evidence={s.step: evidence_sv(s, progress.decision) for s in progress.steps},
            map=svg,
            legend=legend,
            unplaced=sum(1 for o, _ in points if o.latitude is None or o.longitude is None),
            unreached=await service.unreached_all(selection),
        )

    @get("/exports/{name:str}", **PUBLIC, media_type="text/csv")
    async def export(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        name: Annotated[str, PathParameter(max_length=40)],
        municipality: MunicipalityFilter = None,
    ) -> Response[Any]:
        principal = await _reader(request, page=False)
        if isinstance(principal, Response):
            return principal
        service = ReportService(context_for(request, db_session, principal))
        selection = await service.select(municipality=municipality)
        if name == "progress.csv":
            rows = [exports.progress_row(p) for p in await service.progress(selection)]
            text = exports.csv_text(rows)
        elif name == "coverage.csv":
            text = exports.csv_text([exports.plain_row(c) for c in await service.coverage(selection)])
        elif name == "unreached.csv":
            rows = [exports.plain_row(p) for p in await service.unreached_all(selection)]
            text = exports.csv_text(rows, columns=list(UnreachedPoint.__struct_fields__))
        else:
            raise Problem("not-found", f"no export {name}")
        return Response(
            text,
            media_type=exports.CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )


def _sum_coverage(rows: Any) -> dict[str, int]:
    keys = ("total", "invited", "attended", "certified", "follow_up_due", "lapsed", "never_reached")
    out = dict.fromkeys(keys, 0)
    for row in rows:
        for key in keys:
            out[key] += getattr(row, key)
    return out
