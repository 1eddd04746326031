"""The `file` e-mail transport: every message becomes an .eml file in a folder.

The embedded default, so a newcomer sees what TMN would send without an SMTP server.
Settings (`TMN_PLUGIN_CONFIG`, key `file`): `directory` (default `var/mail`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from service.outbox.mime import build_mime
from service.pluginspec import OutgoingEmail, SendResult, hookimpl

__version__ = "1.0.0"


def _filename(message_id: str) -> str:
    # The stable Message-ID names the file, so a retried message overwrites, never duplicates.
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>")) + ".eml"


@hookimpl
def tmn_send_email(messages: list[OutgoingEmail], config: dict[str, Any]) -> list[SendResult]:
    directory = Path(config.get("directory", "var/mail"))
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    for message in messages:
        target = directory / _filename(message.message_id)
        partial = target.with_suffix(".tmp")
        partial.write_bytes(bytes(build_mime(message)))
        os.replace(partial, target)  # atomic: a reader never sees half a message
        results.append(SendResult(message_id=message.message_id, ok=True))
    return results
