"""The plugin contract: every hook a TMN plugin may implement.

A plugin is a module (or object) with functions decorated by `hookimpl`, named like the hooks
below, registered under the `tmn` entry-point group:

    [project.entry-points."tmn"]
    my_plugin = "my_package.tmn_plugin"

Rules that hold for every hook:

- Implementations may be plain functions or `async def` coroutines.
- Arguments are passed by name; an implementation may accept only the arguments it uses.
- Every call has a timeout (`TMN_PLUGIN_TIMEOUT_SECONDS`, per call). An implementation that
  raises or runs past it is logged, counted, and reported as degraded at `GET /v1/plugins` and
  in `/health/ready`; the caller carries on with the other plugins' answers. A plugin therefore
  never breaks a request, but it must not assume it was called exactly once: hooks that deliver
  (e-mail) are retried by the outbox.
- `config` is the plugin's own section of `TMN_PLUGIN_CONFIG` (a JSON object keyed by plugin
  name), so plugins are configured through settings without reading the environment themselves.
- Values handed to plugins may contain personal data (an e-mail address); plugins must not log
  them.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
import pluggy

PROJECT = "tmn"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content_type: str
    content: bytes


class OutgoingEmail(msgspec.Struct, frozen=True, kw_only=True):
    """One message, ready to send. `message_id` is stable across retries."""

    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    attachments: list[Attachment] = msgspec.field(default_factory=list)


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one message: sent; a temporary failure (retry later); or a permanent
    rejection (`permanent=True`, e.g. SMTP 5xx: the address is put on hold)."""

    message_id: str
    ok: bool
    permanent: bool = False
    error: str | None = None
    status_code: int | None = None


class PickupPointRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A carrier's pickup point as a registry describes it."""

    carrier_point_id: str
    name: str
    kind: str = "pickup_point"
    street_address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    opening_hours: str | None = None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """A contact for a municipality's pickup-point staff, shaped after Open Referral HSDS."""

    organization: str
    role: str
    kind: str  # emergency, non_emergency, tip_line, office, person
    phone: str | None = None
    email: str | None = None
    url: str | None = None
    opening_hours: str | None = None
    source: str = ""
    last_verified: str | None = None


class DirectoryData(Protocol):
    """What TMN itself knows, offered to directory plugins (read-only)."""

    async def listed_people(self, municipality_code: str) -> list[Contact]:
        """Coordinators and local working-group convenors of the municipality who consented to
        be listed, as contacts of kind `person`."""
        ...


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened. `type` is one of EVENT_TYPES; `data` is its JSON payload;
    `municipality_code`/`county_code` give its place, for subscribers filtering by scope."""

    id: str
    type: str
    occurred_at: str
    data: dict[str, Any]
    municipality_code: str | None = None
    county_code: str | None = None


class WebhookDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event for one subscribed endpoint, per the Standard Webhooks specification: `id` is the
    `webhook-id` (the same on every retry and replay), `body` the exact bytes to sign and send,
    `secrets` the endpoint's current signing secrets (`whsec_…`; several while one is rotated)."""

    message_id: str
    id: str
    url: str
    body: str
    secrets: list[str]


EVENT_TYPES = (
    "meeting.scheduled",
    "meeting.changed",
    "meeting.cancelled",
    "meeting.held",
    "meeting.closed",
    "certification.status_changed",
)


class TmnSpec:
    """The hooks. Each docstring says: arguments, return value, failure behaviour, example."""

    @hookspec
    def tmn_send_email(self, messages: list[OutgoingEmail], config: dict[str, Any]) -> list[SendResult]:
        """Deliver a batch of e-mail messages.

        Only the transport named by `TMN_EMAIL_TRANSPORT` is called (built in: `smtp`, `file`).

        Arguments: `messages`, the batch the outbox worker claimed; `config`, this plugin's settings.
        Returns: one `SendResult` per message, in any order, matched by `message_id`.
        Failure: raising, or timing out, counts as a temporary failure of the whole batch; the
        worker retries each message with exponential backoff until its attempts run out.
        Example::

            @hookimpl
            async def tmn_send_email(messages, config):
                return [SendResult(message_id=m.message_id, ok=True) for m in messages]
        """
        raise NotImplementedError

    @hookspec
    def tmn_fetch_pickup_points(self, carrier: str, config: dict[str, Any]) -> list[PickupPointRecord] | None:
        """Fetch a carrier's complete list of pickup points from its registry.

        Arguments: `carrier`, the carrier's short code (e.g. `postnord`); `config`, this plugin's
        settings. Return `None` when this plugin does not serve that carrier.
        Returns: every point the registry lists (a full snapshot).
        Failure: raising or timing out leaves the carrier's points as they were; the sync is
        reported as failed and retried on the next schedule.
        Example::

            @hookimpl
            def tmn_fetch_pickup_points(carrier, config):
                if carrier != "budbee":
                    return None
                return [PickupPointRecord(carrier_point_id="SE-1", name="Box Storgatan")]
        """
        raise NotImplementedError

    @hookspec
    def tmn_municipality_contacts(
        self, municipality_code: str, config: dict[str, Any], directory: DirectoryData
    ) -> list[Contact]:
        """Contacts that the staff of a municipality's pickup points should know.

        Arguments: `municipality_code` (four digits, e.g. `2560`); `config`, this plugin's settings;
        `directory`, TMN's own data (people who consented to be listed).
        Returns: the contacts this source knows (possibly none). All sources are merged.
        Failure: a failing or slow source is left out of the merged answer, which names it.
        Example::

            @hookimpl
            def tmn_municipality_contacts(municipality_code, config):
                return [Contact(organization="Polisen", role="Akut", kind="emergency", phone="112",
                                source="police")]
        """
        raise NotImplementedError

    @hookspec
    def tmn_deliver_webhooks(
        self, deliveries: list[WebhookDelivery], config: dict[str, Any]
    ) -> list[SendResult]:
        """Deliver webhook calls (the built-in `webhooks` plugin signs and POSTs them).

        Arguments: `deliveries`, the batch the outbox worker claimed; `config`, this plugin's settings.
        Returns: one `SendResult` per delivery (matched by `message_id`): `ok` for a 2xx answer;
        `permanent=True` with `status_code=410` when the receiver says the endpoint is gone (TMN
        then disables it); anything else is retried with backoff by the outbox.
        Failure: raising or timing out counts as a temporary failure of the whole batch.
        Example::

            @hookimpl
            async def tmn_deliver_webhooks(deliveries, config):
                return [SendResult(message_id=d.message_id, ok=True) for d in deliveries]
        """
        raise NotImplementedError

    @hookspec
    def tmn_domain_event(self, event: DomainEvent, config: dict[str, Any]) -> None:
        """React to something that happened (see EVENT_TYPES): a meeting was scheduled, changed or
        cancelled; a certification changed status.

        Called after the change is committed. Arguments: `event`; `config`, this plugin's settings.
        Returns: nothing.
        Failure: logged and counted; the change itself stands. Work that must not be lost (a
        webhook delivery) belongs in the outbox, not in the hook call.
        Example::

            @hookimpl
            async def tmn_domain_event(event, config):
                if event.type == "meeting.cancelled":
                    ...
        """
