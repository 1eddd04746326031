"""Records audit events from the ORM's unit of work, in the same transaction as the change.

A `before_flush` listener looks at what the flush is about to write, so no service can forget
to audit, and a rolled-back request leaves no audit row either.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from service.audit.models import AuditEvent

REDACTED = "[redacted]"

# Tables audited, and the columns in each that hold personal data (values never stored).
AUDITED: dict[str, frozenset[str]] = {
    "organization": frozenset({"email", "phone"}),
    "participant": frozenset({"name", "email", "email_normalized", "phone"}),
    "participant_role": frozenset(),
    "employment": frozenset(),
    "network": frozenset(),
    "network_county": frozenset(),
    "network_member": frozenset(),
    "api_key": frozenset({"secret_hash"}),
    "meeting": frozenset(),
    "meeting_instructor": frozenset(),
    "meeting_invitation": frozenset({"email"}),
    # The check-in code is a credential of sorts: whoever holds it checks the person in.
    "meeting_registration": frozenset({"checkin_code"}),
    "meeting_reminder": frozenset(),
    # The verify code is what the sticker's QR code carries; the log need not repeat it.
    "certification": frozenset({"verify_code"}),
    "certification_period": frozenset(),
    # Survey tables are deliberately not audited: an audit row would tie an answer to a time.
}
# Bookkeeping columns that are not worth an event of their own.
IGNORED = frozenset({"version", "updated_at", "created_at", "last_used_at", "sa_orm_sentinel"})
# The parent whose id an association row is filed under.
PARENT_KEY = {
    "participant_role": "participant_id",
    "network_county": "network_id",
    "meeting_instructor": "meeting_id",
}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _value(table: str, column: str, value: Any) -> Any:
    if value is not None and column in AUDITED[table]:
        return REDACTED
    return _plain(value)


def _entity_id(table: str, obj: Any) -> str:
    key = PARENT_KEY.get(table)
    return str(getattr(obj, key) if key else obj.id)


def _changes_on_update(table: str, obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    changes: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in IGNORED:
            continue
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new:
            continue
        changes[attr.key] = {"from": _value(table, attr.key, old), "to": _value(table, attr.key, new)}
    return changes


def _all_values(table: str, obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    return {
        attr.key: {"from": None, "to": _value(table, attr.key, getattr(obj, attr.key))}
        for attr in state.mapper.column_attrs
        if attr.key not in IGNORED and getattr(obj, attr.key) is not None
    }


def _action(table: str, changes: dict[str, Any]) -> str:
    status = changes.get("status", {}).get("to")
    if table == "organization" and status in ("archived", "active"):
        return "archive" if status == "archived" else "restore"
    if "erased_at" in changes:
        return "erase"
    if "revoked_at" in changes:
        return "revoke"
    return "update"


@event.listens_for(Session, "before_flush")
def _record(session: Session, _flush_context: Any, _instances: Any) -> None:
    principal_id = str(session.info.get("principal_id", "system"))
    request_id = session.info.get("request_id")
    events: list[AuditEvent] = []

    def add(table: str, obj: Any, action: str, changes: dict[str, Any]) -> None:
        events.append(
            AuditEvent(
                principal_id=principal_id,
                request_id=request_id,
                entity=table,
                entity_id=_entity_id(table, obj),
                action=action,
                changes=changes,
            )
        )

    for obj in list(session.new):
        table = getattr(obj, "__tablename__", "")
        if table in AUDITED:
            if getattr(obj, "id", None) is None and hasattr(type(obj), "id"):
                # The key would be set by the column default during the flush; set it now (the
                # same UUIDv7 the default gives) so the event can name the row.
                obj.id = uuid7()
            add(table, obj, "create", _all_values(table, obj))
    for obj in list(session.dirty):
        table = getattr(obj, "__tablename__", "")
        if table in AUDITED and session.is_modified(obj, include_collections=False):
            changes = _changes_on_update(table, obj)
            if changes:
                add(table, obj, _action(table, changes), changes)
    for obj in list(session.deleted):
        table = getattr(obj, "__tablename__", "")
        if table in AUDITED:
            add(table, obj, "delete", {})
    session.add_all(events)
