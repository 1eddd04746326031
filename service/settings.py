"""Settings: one msgspec Struct read from TMN_* environment variables.

Every variable is documented in the README's configuration table; `Settings.from_env()`
is the only place that reads the environment, so tests build a Settings directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(ValueError):
    """A TMN_* variable holds a value that cannot be used."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Empty means the embedded default: SQLite in `data_dir`.
    database_url: str = ""
    data_dir: str = "var"
    db_pool_size: int = 10
    db_echo: bool = False
    # Absolute base of links the API hands out (Location, Link). Empty: taken from the request.
    public_base_url: str = ""
    cors_origins: tuple[str, ...] = ()
    log_level: LogLevel = "INFO"
    # How long a stored Idempotency-Key answer is replayed.
    idempotency_ttl_hours: int = 24
    debug: bool = False
    # Signs the links TMN sends (unsubscribe). Required with PostgreSQL; the embedded default
    # keeps a generated one in TMN_DATA_DIR/secret.key.
    secret_key: str = ""
    # Requests larger than this answer 413.
    max_request_bytes: int = 1_048_576
    # Requests per principal (or per client address when anonymous) and minute; 0 turns it off.
    rate_limit_per_minute: int = 600
    # How long this process trusts an API key it has checked against the database (0: check every
    # request). A revocation through this process takes effect at once; other processes see it
    # within this time.
    api_key_cache_seconds: float = 30.0
    # OIDC: people signing in through a municipality's identity provider. Off when issuer is empty.
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_algorithms: tuple[str, ...] = ("RS256", "ES256")
    oidc_role_claim: str = "tmn_role"
    oidc_municipality_claim: str = "tmn_municipality"
    oidc_county_claim: str = "tmn_county"
    oidc_carrier_claim: str = "tmn_carrier"
    oidc_jwks_cache_seconds: int = 600
    oidc_leeway_seconds: int = 30
    # Plugins: the names to enable (empty: every installed one), their settings as a JSON object
    # keyed by plugin name, and the timeout of each hook call.
    plugins: tuple[str, ...] = ()
    plugin_config: str = "{}"
    plugin_timeout_seconds: float = 10.0
    # E-mail: the transport plugin that delivers (file on the embedded default, smtp in production),
    # the sender, and the outbox worker's pace.
    email_transport: str = "file"
    email_from: str = "TMN <noreply@tmn.invalid>"
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: float = 30.0
    outbox_backoff_max_seconds: float = 3600.0
    outbox_batch_size: int = 50
    outbox_lease_seconds: float = 120.0
    outbox_poll_seconds: float = 2.0
    # How long contacts from outside sources (police, customs, HTTP lists) are cached.
    directory_cache_seconds: float = 300.0
    # Meetings: where an invitation's link leads (a front end's page, with {token} in it; empty:
    # the API's own JSON at /v1/invitations/{token}), how long a freed seat is held for the next
    # in line, how often the worker looks for due reminders and lapsed offers, and the budget of
    # the public link endpoints per client address and minute (0 turns it off).
    registration_url_template: str = ""
    waitlist_offer_hours: float = 48.0
    meetings_tick_seconds: float = 60.0
    public_rate_limit_per_minute: int = 30
    # Certifications: a period's length, when its renewal window opens, the grace after it, and how
    # often the worker looks for certifications that became due or lapsed (to e-mail them).
    certification_valid_months: int = 12
    certification_window_months: int = 11
    certification_grace_days: int = 90
    certification_notify_seconds: float = 3600.0
    # The Ed25519 key (PEM, PKCS8) that signs verifiable credentials. Required with PostgreSQL;
    # the embedded default generates one into TMN_DATA_DIR/credential-key.pem.
    credential_key_file: str = ""
    # Carriers' registries: a snapshot with more than this share of rows in error, or one that would
    # close more than this share of the carrier's open points, is refused unless forced; how close
    # (metres) and how alike (0–1) two carriers' listings must be to count as one shop; how far
    # (metres) outside every municipality boundary a point may lie and still be placed in the
    # nearest; the largest snapshot body (bytes, compressed as sent); which carriers the worker
    # pulls from their registries (through the registry plugins), and how often.
    registry_max_error_share: float = 0.05
    registry_max_close_share: float = 0.2
    registry_merge_distance_m: float = 75.0
    registry_min_name_similarity: float = 0.6
    placement_tolerance_m: float = 5000.0
    registry_max_body_bytes: int = 64 * 1024 * 1024
    registry_sync_carriers: tuple[str, ...] = ()
    registry_sync_seconds: float = 86400.0
    registry_pull_timeout_seconds: float = 300.0
    # Run the worker inside `tmn serve` too: "auto" does so on the embedded default only.
    worker_in_server: Literal["auto", "yes", "no"] = "auto"
    # OpenTelemetry tracing (service/observability/tracing.py): off by default; on, spans go over
    # OTLP/HTTP to the collector at `otel_endpoint` (its base, e.g. http://collector:4318; empty:
    # the standard OTEL_EXPORTER_OTLP_* variables, else localhost:4318) as service `otel_service_name`.
    otel_enabled: bool = False
    otel_endpoint: str = ""
    otel_service_name: str = "tmn"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = Path(self.data_dir).resolve() / "tmn.sqlite3"
        return f"sqlite+aiosqlite:///{path}"

    @property
    def is_embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            key = f"TMN_{name.upper()}"
            if key in env:
                raw[name] = _parse(name, env[key])
        raw.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid TMN_* setting: {exc}") from exc


def _parse(name: str, value: str) -> Any:
    # Lists are comma-separated; everything else is converted by msgspec (strict=False parses
    # "true", "10" and so on from strings).
    if name in ("cors_origins", "oidc_algorithms", "plugins", "registry_sync_carriers"):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value
