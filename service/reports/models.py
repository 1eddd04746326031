"""Step 1 of the method, the one step that is typed in: the municipality's decision to use it.

Steps 2–5 are derived from meetings, networks and people (see progress.py); only the decision
and its anchoring live outside TMN, so a coordinator records them here with a document reference.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase


class DecidingParty(enum.StrEnum):
    """Who stands behind the decision: the method expects the municipality, police and customs."""

    MUNICIPALITY = "municipality"
    POLICE = "police"
    CUSTOMS = "customs"
    COUNTY_BOARD = "county_board"
    OTHER = "other"


# The parties the method names for anchoring (DOMAIN.md, the five steps); shown as missing when absent.
EXPECTED_PARTIES = (DecidingParty.MUNICIPALITY, DecidingParty.POLICE, DecidingParty.CUSTOMS)


class MunicipalityDecision(EntityBase):
    """One per municipality; replaced as a whole (PUT) and audited like every entity."""

    __tablename__ = "municipality_decision"

    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipality.code"), unique=True)
    decided_on: Mapped[date] = mapped_column(Date)
    # [{"party": "municipality", "name": "Kommunstyrelsen"}, …]: names of bodies, never of people.
    bodies: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The minutes' reference (diarienummer, paragraph) or a link to the published decision.
    document_reference: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(2000))
