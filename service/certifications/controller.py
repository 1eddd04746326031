from __future__ import annotations

import html
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.permissions import PUBLIC, Permission, requires
from service.certifications import credentials, schemas
from service.certifications.models import CertificationStatus
from service.certifications.service import CertificationService, issuer_key
from service.deps import RequestContext
from service.geography.service import GeographyService
from service.http import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    CountyFilter,
    Cursor,
    Limit,
    MunicipalityFilter,
    problem_responses,
)
from service.meetings.controller import outside
from service.meetings.public import link_context
from service.messages import format_day
from service.problems import Problem

READ = requires(Permission.CERTIFICATIONS_READ)
WRITE = requires(Permission.CERTIFICATIONS_WRITE)
STATE_ERRORS = problem_responses(403, 404, 409, 422)
PUBLIC_ERRORS = problem_responses(404, 429)
CertificationId = Annotated[UUID, PathParameter(description="The certification")]
Code = Annotated[str, PathParameter(min_length=10, max_length=60, description="From the sticker's QR code")]
PDF = "application/pdf"


class CertificationController(Controller):
    path = "/v1/certifications"
    tags = ["Certifications"]

    @get("/", **READ, summary="Certifications by place, status and due date", responses=LIST_ERRORS)
    async def list_certifications(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization: Annotated[UUID | None, QueryParameter(description="Of this organization")] = None,
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        status: FromQuery[CertificationStatus | None] = None,
        due_before: Annotated[
            date | None, QueryParameter(description="Active, with valid_until before this day")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> schemas.CertificationPage:
        geography = GeographyService(ctx)
        if municipality is not None:
            await geography.require_municipality(municipality, field="municipality", source="query")
        if county is not None:
            await geography.require_county(county, field="county", source="query")
        return await CertificationService(ctx, outside(request)).page(
            organization_id=organization,
            municipality=municipality,
            county=county,
            status_filter=status,
            due_before=due_before,
            limit=limit,
            cursor=cursor,
        )

    @post(
        "/",
        **WRITE,
        summary="Certify an organization whose staff attended a held collaboration or workplace meeting",
        responses=CREATE_ERRORS,
    )
    async def issue_certification(
        self, request: Request[Any, Any, Any], ctx: RequestContext, data: JSONBody[schemas.CertificationIssue]
    ) -> schemas.Certification:
        service = CertificationService(ctx, outside(request))
        cert = await service.issue(data)
        return await service.one(cert.id)

    @get("/{certification_id:uuid}", **READ, summary="One certification", responses=READ_ERRORS)
    async def get_certification(
        self, request: Request[Any, Any, Any], ctx: RequestContext, certification_id: CertificationId
    ) -> schemas.Certification:
        return await CertificationService(ctx, outside(request)).one(certification_id)

    @get(
        "/{certification_id:uuid}/history",
        **READ,
        summary="Its periods and every change (the organization's certification history)",
        responses=READ_ERRORS,
    )
    async def certification_history(
        self, request: Request[Any, Any, Any], ctx: RequestContext, certification_id: CertificationId
    ) -> schemas.History:
        return await CertificationService(ctx, outside(request)).history(certification_id)

    async def _change(
        self, request: Request[Any, Any, Any], ctx: RequestContext, action: Any
    ) -> schemas.Certification:
        service = CertificationService(ctx, outside(request))
        cert = await action(service)
        return await service.one(cert.id)

    @post(
        "/{certification_id:uuid}/renew",
        **WRITE,
        status_code=200,
        summary="Renew from a follow-up meeting attended inside the renewal window",
        responses=STATE_ERRORS,
    )
    async def renew_certification(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        certification_id: CertificationId,
        data: JSONBody[schemas.Renewal],
    ) -> schemas.Certification:
        return await self._change(request, ctx, lambda s: s.renew(certification_id, data))

    @post(
        "/{certification_id:uuid}/suspend",
        **WRITE,
        status_code=200,
        summary="Suspend (e.g. the sticker removed pending review), with a reason",
        responses=STATE_ERRORS,
    )
    async def suspend_certification(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        certification_id: CertificationId,
        data: JSONBody[schemas.StateChange],
    ) -> schemas.Certification:
        return await self._change(request, ctx, lambda s: s.suspend(certification_id, data))

    @post(
        "/{certification_id:uuid}/reinstate",
        **WRITE,
        status_code=200,
        summary="Lift a suspension",
        responses=STATE_ERRORS,
    )
    async def reinstate_certification(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        certification_id: CertificationId,
        data: JSONBody[schemas.Reinstate],
    ) -> schemas.Certification:
        return await self._change(request, ctx, lambda s: s.reinstate(certification_id, data))

    @post(
        "/{certification_id:uuid}/revoke",
        **WRITE,
        status_code=200,
        summary="Revoke for good, with a reason",
        responses=STATE_ERRORS,
    )
    async def revoke_certification(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        certification_id: CertificationId,
        data: JSONBody[schemas.StateChange],
    ) -> schemas.Certification:
        return await self._change(request, ctx, lambda s: s.revoke(certification_id, data))

    @get(
        "/{certification_id:uuid}/certificate.pdf",
        **READ,
        summary="The certification document for the staff binder (Swedish or English)",
        media_type=PDF,
        responses=READ_ERRORS,
    )
    async def certificate_document(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        certification_id: CertificationId,
        lang: Annotated[Literal["sv", "en"], QueryParameter(description="Language")] = "sv",
    ) -> Response[bytes]:
        cert, pdf = await CertificationService(ctx, outside(request)).certificate_pdf(certification_id, lang)
        return Response(
            pdf,
            media_type=PDF,
            headers={"Content-Disposition": f'inline; filename="certifiering-{cert.number}.pdf"'},
        )

    @get(
        "/{certification_id:uuid}/sticker.pdf",
        **READ,
        summary="The printable sticker for the counter, with its QR code",
        media_type=PDF,
        responses=READ_ERRORS,
    )
    async def sticker_document(
        self, request: Request[Any, Any, Any], ctx: RequestContext, certification_id: CertificationId
    ) -> Response[bytes]:
        cert, pdf = await CertificationService(ctx, outside(request)).sticker_pdf(certification_id)
        return Response(
            pdf,
            media_type=PDF,
            headers={"Content-Disposition": f'inline; filename="dekal-{cert.sticker_serial}.pdf"'},
        )

    @get(
        "/{certification_id:uuid}/credential",
        **READ,
        summary="The certification as a signed Verifiable Credential (Open Badges 3.0, VC-JWT)",
        responses=problem_responses(404, 409),
    )
    async def certification_credential(
        self, request: Request[Any, Any, Any], ctx: RequestContext, certification_id: CertificationId
    ) -> schemas.Credential:
        return await CertificationService(ctx, outside(request)).credential(certification_id)


class PublicCredentialController(Controller):
    """Public: anyone verifies a credential offline with the key and the status lists."""

    path = "/"
    tags = ["Certifications"]

    @get("/.well-known/jwks.json", **PUBLIC, summary="The keys that sign TMN's credentials (JWKS)")
    async def credential_keys(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return credentials.jwks([issuer_key(outside(request))])

    @get(
        "/v1/credentials/status/{purpose:str}",
        **PUBLIC,
        summary="Revoked or suspended credentials as a Bitstring Status List (VC-JWT)",
        media_type="application/vc+jwt",
        responses=PUBLIC_ERRORS,
    )
    async def credential_status_list(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        purpose: Annotated[Literal["revocation", "suspension"], PathParameter()],
    ) -> Response[str]:
        service = CertificationService(link_context(request, db_session), outside(request))
        return Response(await service.status_list(purpose), media_type="application/vc+jwt")

    @get(
        "/v1/verify/{code:str}",
        **PUBLIC,
        summary="Verify a certification from its sticker: status, place, validity; no personal data",
        responses=PUBLIC_ERRORS,
    )
    async def verify_certification(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], code: Code
    ) -> schemas.Verification:
        return await CertificationService(link_context(request, db_session), outside(request)).verify(code)

    @get("/verify/{code:str}", **PUBLIC, include_in_schema=False, media_type=MediaType.HTML)
    async def verify_page(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], code: Code
    ) -> Response[str]:
        service = CertificationService(link_context(request, db_session), outside(request))
        try:
            found = await service.verify(code)
        except Problem:
            return Response(_verify_html(None), status_code=404, media_type=MediaType.HTML)
        return Response(_verify_html(found), media_type=MediaType.HTML)


_LABELS = {
    CertificationStatus.ACTIVE: ("Certifierad", "Certified", "#1e7b34"),
    CertificationStatus.FOLLOW_UP_DUE: (
        "Certifierad – uppföljning väntar",
        "Certified – follow-up due",
        "#1e7b34",
    ),
    CertificationStatus.IN_GRACE: (
        "Certifierad – uppföljning försenad",
        "Certified – follow-up overdue",
        "#b26a00",
    ),
    CertificationStatus.LAPSED: ("Inte längre certifierad", "No longer certified", "#a61b1b"),
    CertificationStatus.SUSPENDED: ("Tillfälligt avstängd", "Suspended", "#a61b1b"),
    CertificationStatus.REVOKED: ("Återkallad", "Revoked", "#a61b1b"),
}


def _verify_html(found: schemas.Verification | None) -> str:
    if found is None:
        body = (
            "<h1>Okänd kod</h1><p>Ingen certifiering har den här koden. / No certification has this code.</p>"
        )
    else:
        sv, en, color = _LABELS[found.status]
        body = (
            f'<p id="status" data-status="{found.status.value}" style="font-size:1.6rem;font-weight:bold;'
            f'color:{color}">{html.escape(sv)}</p><p lang="en">{html.escape(en)}</p>'
            f"<h1>{html.escape(found.organization_name)}</h1>"
            f"<p>{html.escape(found.municipality_name)} kommun</p>"
            f"<p>Certifiering {html.escape(found.certification_number)}<br>"
            f"Giltig till och med {html.escape(format_day(found.valid_until, 'sv'))}</p>"
        )
    return (
        '<!doctype html><html lang="sv"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Kontroll av certifiering – Tillsammans mot nätdroger</title></head>"
        '<body style="font-family:system-ui,Arial,sans-serif;max-width:32rem;margin:0 auto;padding:1.5rem;'
        'line-height:1.5"><p style="color:#555">Tillsammans mot nätdroger</p>'
        f"{body}</body></html>"
    )
