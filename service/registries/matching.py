"""Is this new listing a shop we already know from another carrier? Same postal code, within a
short distance, and the same street address or a similar name."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from uuid import UUID

EARTH_RADIUS_M = 6_371_000.0
_NOT_WORD = re.compile(r"[^0-9a-zåäöéü]+")
# Shop names carry the chain and the place; these words say little about which shop it is.
_NOISE = {"ab", "hb", "kb", "i", "och", "the", "butik", "ombud", "paketombud", "service"}


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def normal(text: str | None) -> str:
    """Lower case, `S:t` as `sankt`, punctuation and noise words gone."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFC", text).casefold().replace("s:t ", "sankt ").replace("st. ", "sankt ")
    words = [w for w in _NOT_WORD.split(folded) if w and w not in _NOISE]
    return " ".join(words)


def name_similarity(a: str, b: str) -> float:
    na, nb = normal(a), normal(b)
    if not na or not nb:
        return 0.0
    if set(na.split()) == set(nb.split()):
        return 1.0
    return SequenceMatcher(None, na, nb).ratio()


@dataclass(frozen=True)
class Candidate:
    organization_id: UUID
    name: str
    street_address: str | None
    latitude: float | None
    longitude: float | None
    carrier_ids: frozenset[UUID]


def best_match(
    *,
    carrier_id: UUID,
    name: str,
    street_address: str | None,
    latitude: float,
    longitude: float,
    candidates: list[Candidate],
    max_distance_m: float,
    min_name_similarity: float,
) -> UUID | None:
    """The candidate shop this listing belongs to, or None for a new shop. A shop that the same
    carrier already lists is never the answer: one carrier does not list one shop twice."""
    best: tuple[float, UUID] | None = None
    street = normal(street_address)
    # A cheap box first: most candidates sharing a postal code are streets away.
    max_lat = max_distance_m / 111_000.0
    max_lon = max_lat / max(math.cos(math.radians(latitude)), 0.01)
    for c in candidates:
        if carrier_id in c.carrier_ids or c.latitude is None or c.longitude is None:
            continue
        if abs(c.latitude - latitude) > max_lat or abs(c.longitude - longitude) > max_lon:
            continue
        distance = haversine_m(latitude, longitude, c.latitude, c.longitude)
        if distance > max_distance_m:
            continue
        same_street = bool(street) and street == normal(c.street_address)
        similarity = name_similarity(name, c.name)
        if not same_street and similarity < min_name_similarity:
            continue
        score = similarity + (1.0 if same_street else 0.0) - distance / max_distance_m
        if best is None or score > best[0]:
            best = (score, c.organization_id)
    return best[1] if best else None
