"""Certification status is computed from rules when it is read, never stored by a cron job that
could fall behind: a period runs from `valid_from` for `valid_months`; its renewal window opens
`window_months` after the start and is due at `valid_until`; then `grace_days` of grace; then it
has lapsed. People's decisions (suspension, revocation) come first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from service.certifications.models import CertificationState, CertificationStatus


@dataclass(frozen=True)
class Terms:
    valid_months: int = 12
    window_months: int = 11
    grace_days: int = 90


@dataclass(frozen=True)
class Window:
    valid_from: date
    window_opens: date
    valid_until: date
    grace_until: date


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later (the month's last day when it has no such day)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)  # unreachable: every month has a 28th


def window(valid_from: date, terms: Terms) -> Window:
    valid_until = add_months(valid_from, terms.valid_months)
    return Window(
        valid_from=valid_from,
        window_opens=add_months(valid_from, terms.window_months),
        valid_until=valid_until,
        grace_until=valid_until + timedelta(days=terms.grace_days),
    )


def status(state: CertificationState, current: Window, today: date) -> CertificationStatus:
    if state is CertificationState.REVOKED:
        return CertificationStatus.REVOKED
    if state is CertificationState.SUSPENDED:
        return CertificationStatus.SUSPENDED
    if today < current.window_opens:
        return CertificationStatus.ACTIVE
    if today < current.valid_until:
        return CertificationStatus.FOLLOW_UP_DUE
    if today < current.grace_until:
        return CertificationStatus.IN_GRACE
    return CertificationStatus.LAPSED


def renewable(state: CertificationState, current: Window, today: date) -> bool:
    """A follow-up renews inside the window: from its opening to the end of grace."""
    return status(state, current, today) in (CertificationStatus.FOLLOW_UP_DUE, CertificationStatus.IN_GRACE)
