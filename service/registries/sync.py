"""Applying a carrier's list of pickup points: a full snapshot (push or pull) or single deltas.

A snapshot is validated row by row, placed in municipalities in one vectorised pass, compared
with what the carrier had (by a digest of each row), and the difference is written with bulk
statements in the caller's one transaction: created, updated, unchanged, closed (absent: closed,
never deleted), reopened. New listings join a shop another carrier already lists when the rule
says they are one (see matching.py); existing links are never re-matched, so a coordinator's
merge or split stays. A broken export must not wipe a carrier: too many bad rows, or too many
closures, and the whole snapshot is refused unless forced.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from sqlalchemy import Table, bindparam, func, select, update
from uuid_utils import uuid7 as fast_uuid7

from service.audit.models import AuditEvent
from service.context import Context
from service.meetings.mail import Outside
from service.observability.metrics import REGISTRY_SYNCS
from service.organizations.models import PHYSICAL_KINDS, Organization, OrganizationKind, OrganizationStatus
from service.problems import FieldError, Problem, not_found
from service.registries import schemas
from service.registries.matching import Candidate, best_match
from service.registries.models import Carrier, CarrierPoint, PointStatus
from service.registries.placement import CoordinateError, Placement, default_placer
from service.validation import normalize_postal_code

ORG_KIND = {
    "pickup_point": OrganizationKind.PICKUP_POINT,
    "locker": OrganizationKind.PICKUP_POINT,
    "terminal": OrganizationKind.TERMINAL,
    "mail_carrier_office": OrganizationKind.MAIL_CARRIER_OFFICE,
}
MAX_ROW_ERRORS_SHOWN = 1000
# Bulk statements go to the tables themselves, past the ORM's unit of work (thousands of rows).
ORGS = cast(Table, Organization.__table__)
POINTS = cast(Table, CarrierPoint.__table__)


@dataclass
class Row:
    number: int
    point: schemas.PointIn
    postal_code: str
    placement: Placement
    digest: str


def digest(point: schemas.PointIn, postal_code: str) -> str:
    values = (
        point.name,
        point.kind,
        point.street_address or "",
        postal_code,
        point.city or "",
        f"{point.latitude:.6f}",
        f"{point.longitude:.6f}",
        point.opening_hours or "",
    )
    return hashlib.md5("\x1f".join(values).encode(), usedforsecurity=False).hexdigest()


class RegistryService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.settings = outside.settings

    async def carrier(self, code: str) -> Carrier:
        carrier = (await self.ctx.session.scalars(select(Carrier).where(Carrier.code == code))).one_or_none()
        if carrier is None:
            raise not_found("carrier", code)
        return carrier

    def authorize_push(self, code: str) -> None:
        """Only the carrier's own integration key writes its list."""
        if self.ctx.principal.scope.carrier != code:
            raise Problem("forbidden", f"only {code}'s own integration key may send {code}'s pickup points")

    # --- validation and placement -----------------------------------------------------------

    def validate(self, rows: list[Any]) -> tuple[list[Row], list[schemas.RowError]]:
        errors: list[schemas.RowError] = []
        points: list[tuple[int, schemas.PointIn, str]] = []
        seen: set[str] = set()
        try:
            # The common case, a clean export, in one call; row by row only to name the bad rows.
            converted: list[schemas.PointIn | None] = list(msgspec.convert(rows, list[schemas.PointIn]))
        except msgspec.ValidationError:
            converted = [None] * len(rows)
        for number, (raw, point_or_none) in enumerate(zip(rows, converted, strict=True), start=1):
            ident = str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") is not None else None
            point = point_or_none
            if point is None:
                try:
                    point = msgspec.convert(raw, schemas.PointIn)
                except msgspec.ValidationError as exc:
                    field, reason = _field_of(str(exc))
                    errors.append(schemas.RowError(row=number, id=ident, field=field, reason=reason))
                    continue
            if point.id in seen:
                errors.append(schemas.RowError(row=number, id=point.id, field="id", reason="listed twice"))
                continue
            seen.add(point.id)
            missing = [f for f in ("street_address", "postal_code", "city") if getattr(point, f) is None]
            if missing:
                errors.append(schemas.RowError(row=number, id=point.id, field=missing[0], reason="required"))
                continue
            try:
                postal_code = normalize_postal_code(point.postal_code or "", "postal_code")
            except Problem:
                errors.append(
                    schemas.RowError(
                        row=number, id=point.id, field="postal_code", reason="not a Swedish postal code"
                    )
                )
                continue
            points.append((number, point, postal_code))
        placements = default_placer(self.settings.placement_tolerance_m).place_many(
            [(p.latitude, p.longitude) for _, p, _ in points]
        )
        valid: list[Row] = []
        for (number, point, postal_code), placed in zip(points, placements, strict=True):
            if isinstance(placed, CoordinateError):
                field = "longitude" if point.latitude is not None and point.longitude is None else "latitude"
                errors.append(schemas.RowError(row=number, id=point.id, field=field, reason=str(placed)))
            elif placed is None:
                errors.append(
                    schemas.RowError(
                        row=number,
                        id=point.id,
                        field="latitude",
                        reason="in no municipality, nor within "
                        f"{self.settings.placement_tolerance_m:.0f} m of one",
                    )
                )
            else:
                valid.append(Row(number, point, postal_code, placed, digest(point, postal_code)))
        errors.sort(key=lambda e: e.row)
        return valid, errors

    # --- snapshot -----------------------------------------------------------------------------

    async def snapshot(self, code: str, rows: list[Any], *, dry_run: bool, force: bool) -> schemas.SyncReport:
        carrier = await self.carrier(code)
        valid, errors = self.validate(rows)
        received = len(rows)
        if received and not force and len(errors) / received > self.settings.registry_max_error_share:
            REGISTRY_SYNCS.labels(carrier=code, outcome="refused").inc()
            raise Problem(
                "validation-error",
                f"{len(errors)} of {received} rows have errors, more than the "
                f"{self.settings.registry_max_error_share:.0%} allowed: nothing was changed "
                "(fix the export, or send it again with force=true)",
                errors=[
                    FieldError(f"[{e.row - 1}].{e.field}", e.reason) for e in errors[:MAX_ROW_ERRORS_SHOWN]
                ],
            )
        session = self.ctx.session
        existing = {
            ext: (ident, org_id, digest_, status)
            for ext, ident, org_id, digest_, status in (
                await session.execute(
                    select(
                        CarrierPoint.external_id,
                        CarrierPoint.id,
                        CarrierPoint.organization_id,
                        CarrierPoint.content_hash,
                        CarrierPoint.status,
                    ).where(CarrierPoint.carrier_id == carrier.id)
                )
            ).tuples()
        }
        sent = {r.point.id for r in valid} | {e.id for e in errors if e.id}
        create = [r for r in valid if r.point.id not in existing]
        change = [
            r
            for r in valid
            if r.point.id in existing
            and (existing[r.point.id][2] != r.digest or existing[r.point.id][3] is PointStatus.CLOSED)
        ]
        unchanged = len(valid) - len(create) - len(change)
        reopen = [r for r in change if existing[r.point.id][3] is PointStatus.CLOSED]
        # A row in error keeps its point as it was: only points absent from the snapshot close.
        close = [v for ext, v in existing.items() if v[3] is PointStatus.OPEN and ext not in sent]
        open_before = sum(1 for v in existing.values() if v[3] is PointStatus.OPEN)
        if open_before and not force and len(close) / open_before > self.settings.registry_max_close_share:
            REGISTRY_SYNCS.labels(carrier=code, outcome="refused").inc()
            raise Problem(
                "conflict",
                f"this snapshot would close {len(close)} of {code}'s {open_before} open points, "
                f"more than the {self.settings.registry_max_close_share:.0%} allowed: nothing was "
                "changed (send it again with force=true if they really closed)",
            )
        report = schemas.SyncReport(
            carrier=code,
            dry_run=dry_run,
            received=received,
            created=len(create),
            updated=len(change) - len(reopen),
            unchanged=unchanged,
            closed=len(close),
            reopened=len(reopen),
            joined_existing_shop=0,
            placed_by_proximity=sum(1 for r in create + change if r.placement.method == "proximity"),
            errors=errors[:MAX_ROW_ERRORS_SHOWN],
        )
        if dry_run:
            report.joined_existing_shop = len(await self._match(carrier, create))
            return report
        now = self.ctx.clock()
        report.joined_existing_shop = await self._create(carrier, create, now)
        await self._change(change, existing, now)
        await self._close([v[0] for v in close], now)
        if existing:
            await self._touch(carrier.id, now)
        await self._settle_shops({v[1] for v in close} | {existing[r.point.id][1] for r in reopen})
        session.add(
            AuditEvent(
                principal_id=self.ctx.principal.id,
                request_id=session.info.get("request_id"),
                entity="carrier",
                entity_id=str(carrier.id),
                action="sync",
                changes={
                    k: {"from": None, "to": v}
                    for k, v in msgspec.structs.asdict(report).items()
                    if isinstance(v, int) and not isinstance(v, bool)
                },
            )
        )
        await session.flush()
        REGISTRY_SYNCS.labels(carrier=code, outcome="applied").inc()
        return report

    async def _match(self, carrier: Carrier, create: list[Row]) -> dict[str, UUID]:
        if not create:
            return {}
        codes = sorted({r.postal_code for r in create})
        by_postal: dict[str, list[Candidate]] = defaultdict(list)
        carriers_of: dict[UUID, set[UUID]] = defaultdict(set)
        rows: list[tuple[UUID, str, str | None, float | None, float | None, str | None]] = []
        for chunk in _chunks(codes, 1000):
            stmt = select(
                Organization.id,
                Organization.name,
                Organization.street_address,
                Organization.latitude,
                Organization.longitude,
                Organization.postal_code,
            ).where(Organization.postal_code.in_(chunk), Organization.kind.in_(sorted(PHYSICAL_KINDS)))
            rows.extend((await self.ctx.session.execute(stmt)).tuples())
        ids = [r[0] for r in rows]
        for chunk in _chunks(ids, 1000):
            listed = select(CarrierPoint.organization_id, CarrierPoint.carrier_id).where(
                CarrierPoint.organization_id.in_(chunk)
            )
            for org_id, carrier_id in (await self.ctx.session.execute(listed)).tuples():
                carriers_of[org_id].add(carrier_id)
        for org_id, name, street, lat, lon, postal in rows:
            if postal is not None:
                by_postal[postal].append(
                    Candidate(org_id, name, street, lat, lon, frozenset(carriers_of[org_id]))
                )
        matched: dict[str, UUID] = {}
        for row in create:
            found = best_match(
                carrier_id=carrier.id,
                name=row.point.name,
                street_address=row.point.street_address,
                latitude=row.point.latitude or 0.0,
                longitude=row.point.longitude or 0.0,
                candidates=by_postal.get(row.postal_code, []),
                max_distance_m=self.settings.registry_merge_distance_m,
                min_name_similarity=self.settings.registry_min_name_similarity,
            )
            if found is not None:
                matched[row.point.id] = found
        return matched

    async def _create(self, carrier: Carrier, create: list[Row], now: datetime) -> int:
        if not create:
            return 0
        matched = await self._match(carrier, create)
        orgs: list[dict[str, Any]] = []
        points: list[dict[str, Any]] = []
        for row in create:
            org_id: UUID | str | None = matched.get(row.point.id)
            if org_id is None:
                org_id = new_id()
                orgs.append(self._org_values(org_id, row, now))
            points.append(self._point_values(new_id(), carrier.id, org_id, row, now))
        await self._insert(ORGS, orgs)
        await self._insert(POINTS, points)
        return len(matched)

    async def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Many rows at once: PostgreSQL's COPY on the session's own connection (so in its
        transaction), an executemany elsewhere. COPY skips SQLAlchemy's per-value processing,
        which costs more than the database itself at this scale."""
        if not rows:
            return
        connection = await self.ctx.session.connection()
        if connection.dialect.name != "postgresql":
            for chunk in _chunks(rows, 5000):
                await self.ctx.session.execute(table.insert(), chunk)
            return
        columns = list(rows[0])
        records = [tuple(row.values()) for row in rows]  # plain values already (see _org_values)
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(table.name, records=records, columns=columns)

    @staticmethod
    def _org_values(org_id: UUID | str, row: Row, now: datetime) -> dict[str, Any]:
        p = row.point
        return {
            "id": org_id,
            "kind": ORG_KIND[p.kind].value,
            "name": p.name.strip(),
            "street_address": (p.street_address or "").strip() or None,
            "postal_code": row.postal_code,
            "city": (p.city or "").strip() or None,
            "latitude": p.latitude,
            "longitude": p.longitude,
            "municipality_code": row.placement.municipality_code,
            "county_code": row.placement.municipality_code[:2],
            "status": OrganizationStatus.ACTIVE.value,
            "placement": row.placement.method,
            "placement_distance_m": row.placement.distance_m or None,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _point_values(
        ident: UUID | str, carrier_id: UUID, org_id: UUID | str, row: Row, now: datetime
    ) -> dict[str, Any]:
        p = row.point
        return {
            "id": ident,
            "carrier_id": carrier_id,
            "external_id": p.id,
            "organization_id": org_id,
            "name": p.name.strip(),
            "kind": p.kind,
            "street_address": (p.street_address or "").strip() or None,
            "postal_code": row.postal_code,
            "city": (p.city or "").strip() or None,
            "latitude": p.latitude,
            "longitude": p.longitude,
            "opening_hours": p.opening_hours,
            "status": PointStatus.OPEN.value,
            "closed_at": None,
            "last_seen_at": now,
            "content_hash": row.digest,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }

    async def _change(self, change: list[Row], existing: dict[str, Any], now: datetime) -> None:
        if not change:
            return
        table = POINTS
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                name=bindparam("b_name"),
                kind=bindparam("b_kind"),
                street_address=bindparam("b_street"),
                postal_code=bindparam("b_postal"),
                city=bindparam("b_city"),
                latitude=bindparam("b_lat"),
                longitude=bindparam("b_lon"),
                opening_hours=bindparam("b_hours"),
                status=PointStatus.OPEN,
                closed_at=None,
                last_seen_at=now,
                content_hash=bindparam("b_hash"),
                updated_at=now,
                version=table.c.version + 1,
            )
        )
        params = [
            {
                "b_id": existing[r.point.id][0],
                "b_name": r.point.name.strip(),
                "b_kind": r.point.kind,
                "b_street": r.point.street_address,
                "b_postal": r.postal_code,
                "b_city": r.point.city,
                "b_lat": r.point.latitude,
                "b_lon": r.point.longitude,
                "b_hours": r.point.opening_hours,
                "b_hash": r.digest,
            }
            for r in change
        ]
        for chunk in _chunks(params, 5000):
            await self.ctx.session.execute(stmt, chunk)
        # A shop listed by this carrier alone follows its listing (unless a coordinator placed it
        # by hand); a shop several carriers list keeps what it has.
        org_ids = [existing[r.point.id][1] for r in change]
        listings: dict[UUID, int] = {}
        for chunk in _chunks(org_ids, 1000):
            stmt_count = (
                select(CarrierPoint.organization_id, func.count())
                .where(CarrierPoint.organization_id.in_(chunk))
                .group_by(CarrierPoint.organization_id)
            )
            # Rows, not plain tuples: dict() does not take them.
            for org, n in (await self.ctx.session.execute(stmt_count)).tuples():
                listings[org] = n
        orgs = ORGS
        org_stmt = (
            update(orgs)
            .where(orgs.c.id == bindparam("b_id"))
            .values(
                name=bindparam("b_name"),
                street_address=bindparam("b_street"),
                postal_code=bindparam("b_postal"),
                city=bindparam("b_city"),
                latitude=bindparam("b_lat"),
                longitude=bindparam("b_lon"),
                updated_at=now,
                version=orgs.c.version + 1,
            )
        )
        placed_stmt = (
            update(orgs)
            .where(orgs.c.id == bindparam("b_id"), orgs.c.placement != "manual")
            .values(
                municipality_code=bindparam("b_municipality"),
                county_code=bindparam("b_county"),
                placement=bindparam("b_placement"),
                placement_distance_m=bindparam("b_distance"),
            )
        )
        single = [r for r in change if listings.get(existing[r.point.id][1], 0) == 1]
        org_params = [
            {
                "b_id": existing[r.point.id][1],
                "b_name": r.point.name.strip(),
                "b_street": r.point.street_address,
                "b_postal": r.postal_code,
                "b_city": r.point.city,
                "b_lat": r.point.latitude,
                "b_lon": r.point.longitude,
            }
            for r in single
        ]
        placed_params = [
            {
                "b_id": existing[r.point.id][1],
                "b_municipality": r.placement.municipality_code,
                "b_county": r.placement.municipality_code[:2],
                "b_placement": r.placement.method,
                "b_distance": r.placement.distance_m or None,
            }
            for r in single
        ]
        for chunk in _chunks(org_params, 5000):
            await self.ctx.session.execute(org_stmt, chunk)
        for chunk in _chunks(placed_params, 5000):
            await self.ctx.session.execute(placed_stmt, chunk)

    async def _close(self, point_ids: list[UUID], now: datetime) -> None:
        table = POINTS
        for chunk in _chunks(point_ids, 1000):
            await self.ctx.session.execute(
                update(table)
                .where(table.c.id.in_(chunk))
                .values(status=PointStatus.CLOSED, closed_at=now, updated_at=now, version=table.c.version + 1)
            )

    async def _touch(self, carrier_id: UUID, now: datetime) -> None:
        """Everything the snapshot listed was seen now (unchanged rows too): after the closures,
        the carrier's open points are exactly those."""
        await self.ctx.session.execute(
            update(POINTS)
            .where(POINTS.c.carrier_id == carrier_id, POINTS.c.status == PointStatus.OPEN)
            .values(last_seen_at=now)
        )

    async def _settle_shops(self, org_ids: set[UUID]) -> None:
        """A shop with no open listing left has closed (archived; its certification revoked); a
        closed shop listed again comes back, with its history."""
        if not org_ids:
            return
        from service.certifications.service import CertificationService

        session = self.ctx.session
        open_counts: dict[UUID, int] = defaultdict(int)
        for chunk in _chunks(sorted(org_ids), 1000):
            stmt = (
                select(CarrierPoint.organization_id, func.count())
                .where(CarrierPoint.organization_id.in_(chunk), CarrierPoint.status == PointStatus.OPEN)
                .group_by(CarrierPoint.organization_id)
            )
            for org_id, n in (await session.execute(stmt)).tuples():
                open_counts[org_id] = n
        now = self.ctx.clock()
        certifications = CertificationService(self.ctx, self.outside)
        for org_id in sorted(org_ids):
            # populate_existing: bulk statements may have changed a row this session holds.
            org = await session.get(Organization, org_id, populate_existing=True)
            if org is None:
                continue
            if open_counts.get(org_id, 0) == 0 and org.status is OrganizationStatus.ACTIVE:
                org.status, org.archived_at = OrganizationStatus.ARCHIVED, now
                await session.flush()
                await certifications.organization_closed(org)
            elif open_counts.get(org_id, 0) > 0 and org.status is OrganizationStatus.ARCHIVED:
                org.status, org.archived_at = OrganizationStatus.ACTIVE, None
        await session.flush()

    # --- deltas -------------------------------------------------------------------------------

    async def upsert_one(self, code: str, external_id: str, data: schemas.PointUpsert) -> schemas.SyncReport:
        raw = {"id": external_id, **msgspec.structs.asdict(data)}
        valid, errors = self.validate([raw])
        if errors:
            raise Problem(
                "validation-error",
                f"{errors[0].field}: {errors[0].reason}",
                errors=[FieldError(e.field, e.reason) for e in errors],
            )
        carrier = await self.carrier(code)
        row = valid[0]
        found = (
            await self.ctx.session.execute(
                select(
                    CarrierPoint.id,
                    CarrierPoint.organization_id,
                    CarrierPoint.content_hash,
                    CarrierPoint.status,
                ).where(CarrierPoint.carrier_id == carrier.id, CarrierPoint.external_id == external_id)
            )
        ).first()
        now = self.ctx.clock()
        report = schemas.SyncReport(
            carrier=code,
            dry_run=False,
            received=1,
            created=0,
            updated=0,
            unchanged=0,
            closed=0,
            reopened=0,
            joined_existing_shop=0,
            placed_by_proximity=int(row.placement.method == "proximity"),
            errors=[],
        )
        if found is None:
            report.created = 1
            report.joined_existing_shop = await self._create(carrier, [row], now)
        elif found[2] == row.digest and found[3] is PointStatus.OPEN:
            report.unchanged = 1
        else:
            existing = {external_id: (found[0], found[1], found[2], found[3])}
            await self._change([row], existing, now)
            if found[3] is PointStatus.CLOSED:
                report.reopened = 1
                await self._settle_shops({found[1]})
            else:
                report.updated = 1
        await self.ctx.session.flush()
        return report

    async def close_one(self, code: str, external_id: str) -> None:
        carrier = await self.carrier(code)
        point = (
            await self.ctx.session.scalars(
                select(CarrierPoint).where(
                    CarrierPoint.carrier_id == carrier.id, CarrierPoint.external_id == external_id
                )
            )
        ).one_or_none()
        if point is None:
            raise not_found("pickup point", f"{code}/{external_id}")
        if point.status is PointStatus.OPEN:
            point.status, point.closed_at = PointStatus.CLOSED, self.ctx.clock()
            await self.ctx.session.flush()
            await self._settle_shops({point.organization_id})


def _field_of(message: str) -> tuple[str, str]:
    """msgspec's `Expected …, got … - at `$.latitude`` as ("latitude", "Expected …")."""
    reason, _, where = message.partition(" - at `$")
    field = where.rstrip("`").lstrip(".") or "row"
    for prefix in ("Object missing required field `", "Object contains unknown field `"):
        if reason.startswith(prefix):
            name = reason[len(prefix) :].split("`", 1)[0]
            return (f"{field}.{name}" if field != "row" else name), reason.split("`", 1)[0].strip().lower()
    return field, reason


def new_id() -> str:
    """A UUIDv7 as text, the fast way (uuid-utils' own type; its stdlib-compatible one costs ~4×)."""
    return str(fast_uuid7())


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
