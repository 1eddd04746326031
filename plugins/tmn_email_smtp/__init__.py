"""The `smtp` e-mail transport (aiosmtplib).

Settings (`TMN_PLUGIN_CONFIG`, key `smtp`): `host` (default 127.0.0.1), `port` (25, or 465 with
`security: "tls"`), `security`: `"none"`, `"starttls"` or `"tls"` (implicit TLS), `username`,
`password`, `timeout_seconds` (30), `concurrency` (connections at once, 2), `ca_file` (trust this
CA bundle instead of the system's, e.g. for an internal relay). Each connection is
reused for its share of the batch. A 5xx answer is a permanent rejection; connection problems
and 4xx answers are temporary and retried by the outbox.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiosmtplib

from service.outbox.mime import build_mime
from service.pluginspec import OutgoingEmail, SendResult, hookimpl

__version__ = "1.0.0"


def _failure(message: OutgoingEmail, error: str, *, permanent: bool = False) -> SendResult:
    return SendResult(message_id=message.message_id, ok=False, permanent=permanent, error=error)


def _rejection(exc: aiosmtplib.SMTPException) -> tuple[bool, str]:
    """(permanent, safe error text) for an SMTP error; never the addresses it names."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [e.code for e in exc.recipients]
        return bool(codes) and all(500 <= c < 600 for c in codes), f"recipient refused ({codes})"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 500 <= exc.code < 600, f"SMTP {exc.code}"
    return False, type(exc).__name__


async def _send_share(share: list[OutgoingEmail], config: dict[str, Any]) -> list[SendResult]:
    security = config.get("security", "none")
    tls_context = ssl.create_default_context(cafile=config["ca_file"]) if config.get("ca_file") else None
    client = aiosmtplib.SMTP(
        tls_context=tls_context,
        hostname=config.get("host", "127.0.0.1"),
        port=int(config.get("port", 465 if security == "tls" else 25)),
        use_tls=security == "tls",
        start_tls=security == "starttls",
        timeout=float(config.get("timeout_seconds", 30)),
    )
    try:
        await client.connect()
        if config.get("username"):
            await client.login(config["username"], config.get("password", ""))
    except (aiosmtplib.SMTPException, OSError) as exc:
        client.close()
        return [_failure(m, f"cannot connect: {type(exc).__name__}") for m in share]
    results: list[SendResult] = []
    finished = False
    try:
        for index, message in enumerate(share):
            try:
                await client.send_message(build_mime(message))
                results.append(SendResult(message_id=message.message_id, ok=True))
            except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
                # The connection is gone: this and the rest of the share are retried later.
                results += [_failure(m, f"connection lost: {type(exc).__name__}") for m in share[index:]]
                break
            except aiosmtplib.SMTPException as exc:
                permanent, error = _rejection(exc)
                results.append(_failure(message, error, permanent=permanent))
        finished = True
    finally:
        if client.is_connected and finished:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        elif client.is_connected:
            # Cut off (the host's time limit cancelled the call): waiting for the relay's goodbye
            # would hold the caller for up to the SMTP timeout again. Hang up instead.
            client.close()
    return results


@hookimpl
async def tmn_send_email(messages: list[OutgoingEmail], config: dict[str, Any]) -> list[SendResult]:
    connections = max(1, min(int(config.get("concurrency", 2)), len(messages) or 1))
    shares = [messages[i::connections] for i in range(connections)]
    answers = await asyncio.gather(*(_send_share(share, config) for share in shares if share))
    return [result for answer in answers for result in answer]
