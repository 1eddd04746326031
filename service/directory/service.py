"""Merging the directory sources: deduplicated, emergency first, cached, failures named."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import vobject

from service.directory.data import TmnDirectoryData
from service.pluginhost import PluginFailure, PluginHost
from service.pluginspec import Contact

KIND_ORDER = {"emergency": 0, "non_emergency": 1, "tip_line": 2, "office": 3, "person": 4}


class ContactsAnswer(msgspec.Struct, kw_only=True):
    municipality_code: str
    contacts: list[Contact]
    # Sources that failed or timed out; the answer holds what the others gave.
    failed_sources: list[str]


@dataclass
class DirectoryCache:
    """Per source and municipality, for `ttl` seconds. Sources in `live` are always asked (TMN's
    own data: cheap, and a withdrawn consent must show at once)."""

    ttl: float
    live: frozenset[str] = frozenset({"municipality"})
    entries: dict[tuple[str, str], tuple[float, list[Contact]]] = field(default_factory=dict)

    def get(self, source: str, code: str) -> list[Contact] | None:
        if source in self.live:
            return None
        hit = self.entries.get((source, code))
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, source: str, code: str, contacts: list[Contact]) -> None:
        if source not in self.live:
            self.entries[(source, code)] = (time.monotonic() + self.ttl, contacts)


NATIONAL_KINDS = frozenset({"emergency", "non_emergency", "tip_line"})


def _key(contact: Contact) -> tuple[Any, ...]:
    """One entry per number: 112 from two sources is one contact. Offices and people are told
    apart by organization too, since several offices share a switchboard number."""
    reach = "".join((contact.phone or contact.email or contact.url or "").split()).lower()
    if contact.kind in NATIONAL_KINDS:
        return (contact.kind, reach)
    return (contact.kind, contact.organization.lower(), contact.role.lower(), reach)


def merge(found: dict[str, list[Contact]]) -> list[Contact]:
    seen: set[tuple[Any, ...]] = set()
    merged: list[Contact] = []
    for source in sorted(found):
        for contact in found[source]:
            if isinstance(contact, Contact) and _key(contact) not in seen:
                seen.add(_key(contact))
                merged.append(contact)
    return sorted(merged, key=lambda c: (KIND_ORDER.get(c.kind, 9), c.organization, c.role))


async def contacts_for(
    host: PluginHost, data: TmnDirectoryData, cache: DirectoryCache, code: str
) -> ContactsAnswer:
    found: dict[str, list[Contact]] = {}
    failed: list[str] = []
    for source in host.implementers("tmn_municipality_contacts"):
        cached = cache.get(source, code)
        if cached is not None:
            found[source] = cached
            continue
        try:
            answer = await host.call(
                "tmn_municipality_contacts", source, municipality_code=code, directory=data
            )
        except PluginFailure:
            failed.append(source)
            continue
        contacts = [c for c in answer or [] if isinstance(c, Contact)]
        cache.put(source, code, contacts)
        found[source] = contacts
    return ContactsAnswer(municipality_code=code, contacts=merge(found), failed_sources=sorted(failed))


def vcards(contacts: list[Contact]) -> str:
    """The contacts as vCard 3.0, one card each, for a phone's address book."""
    cards = []
    for contact in contacts:
        card = vobject.vCard()
        card.add("fn").value = (
            f"{contact.organization} – {contact.role}" if contact.organization else contact.role
        )
        card.add("n").value = vobject.vcard.Name(family=contact.organization or contact.role)
        if contact.organization:
            card.add("org").value = [contact.organization]
        card.add("title").value = contact.role
        if contact.phone:
            card.add("tel").value = contact.phone
        if contact.email:
            card.add("email").value = contact.email
        if contact.url:
            card.add("url").value = contact.url
        if contact.opening_hours:
            card.add("note").value = contact.opening_hours
        cards.append(card.serialize())
    return "".join(cards)
