"""Turns an OutgoingEmail into a MIME message (used by the built-in transports)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

from service.db import utcnow
from service.pluginspec import OutgoingEmail


def build_mime(message: OutgoingEmail) -> EmailMessage:
    mime = EmailMessage()
    mime["Message-ID"] = message.message_id
    mime["From"] = message.sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(utcnow())
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return mime
