"""Consent and list hygiene: one-click unsubscribe, and the holds on addresses that bounced."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select

from service.context import Context
from service.db import utcnow
from service.outbox.models import EmailHold
from service.outbox.service import UNSUBSCRIBE
from service.participants.models import Participant
from service.participants.repository import ParticipantRepository
from service.problems import not_found
from service.settings import Settings
from service.signing import InvalidToken, unsign


async def unsubscribe(ctx: Context, settings: Settings, token: str) -> bool:
    """Withdraw the consent named by a signed link; True when the token was good."""
    try:
        participant_id = UUID(str(unsign(settings, UNSUBSCRIBE, token)))
    except (InvalidToken, ValueError):
        return False
    person = await ctx.session.get(Participant, participant_id)
    if person is None:
        return False
    if person.mailing_list_consent:
        person.mailing_list_consent = False
        person.consent_changed_at = utcnow()
        await ctx.session.flush()
    return True


async def visible_holds(ctx: Context) -> list[EmailHold]:
    """Holds an administrator sees all of; others only those of people in their scope."""
    stmt = select(EmailHold).order_by(EmailHold.held_at.desc(), EmailHold.address)
    if not ctx.principal.scope.nation:
        people = (
            ParticipantRepository(session=ctx.session)
            .scoped(ctx.principal)
            .with_only_columns(Participant.email_normalized)
        )
        stmt = stmt.where(EmailHold.address.in_(people.scalar_subquery()))
    return list(await ctx.session.scalars(stmt))


async def clear_hold(ctx: Context, address: str) -> None:
    address = address.lower()
    for hold in await visible_holds(ctx):
        if hold.address == address:
            await ctx.session.delete(hold)
            await ctx.session.flush()
            return
    raise not_found("hold", "for this address")


__all__ = ["clear_hold", "unsubscribe", "visible_holds"]
