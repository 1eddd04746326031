"""The OpenAPI document is usable by the teams who will generate their own clients: a Python client
is generated from openapi/openapi.json with openapi-python-client, and a scenario runs through it
against the real server (`tmn serve --demo` as a process): network, people, meeting, invitation,
registration through the e-mailed link, attendance, certification, public verification."""

from __future__ import annotations

import email
import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest

from service.seed import demo_key
from tests.test_cli import TMN, _free_port

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Generated fresh from the committed document, imported from a temporary folder."""
    out = tmp_path_factory.mktemp("generated")
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(ROOT / "openapi" / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(out / "tmn_client"),
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("tmn_client")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("served")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    env.update(TMN_DATA_DIR=str(root / "data"), TMN_PUBLIC_BASE_URL=base, TMN_OUTBOX_POLL_SECONDS="0.2")
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [str(TMN), "serve", "--demo", "--port", str(port)], cwd=root, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (root / "server.log").read_text()
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (root / "server.log").read_text()
            time.sleep(0.2)
        yield base, root / "var" / "mail"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def api(package: Any, module: str) -> Any:
    area, _, name = module.partition(".")
    return importlib.import_module(f"{package.__name__}.api.{area}.{name}")


def model(package: Any, name: str) -> Any:
    module = importlib.import_module(f"{package.__name__}.models")
    return getattr(module, name)


def wait_for_mail(folder: Path, address: str, contains: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if message["To"] == address:
                body = message.get_body(preferencelist=("plain",))
                text = str(body.get_content()) if body is not None else ""
                if contains in text:
                    return text
        time.sleep(0.2)
    raise AssertionError(f"no e-mail to {address} with {contains!r}")


def test_a_generated_client_runs_the_method(client_package: Any, server: tuple[str, Path]) -> None:
    base, mail = server
    pkg = client_package
    admin = pkg.AuthenticatedClient(
        base_url=base, token=demo_key("demoadmn"), raise_on_unexpected_status=True
    )
    public = pkg.Client(base_url=base, raise_on_unexpected_status=True)

    # Network and people, from the demo: Älvsbyn's working group, its instructors, a shop.
    networks = api(pkg, "networks.v1_networks_list_networks").sync(client=admin, municipality="2560")
    group = next(n for n in networks.items if n.kind == "local_working_group")
    people = api(pkg, "participants.v1_participants_list_participants")
    sara = people.sync(client=admin, q="Sara").items[0]
    lena = people.sync(client=admin, q="Lena").items[0]
    shops = api(pkg, "organizations.v1_organizations_list_organizations").sync(
        client=admin, municipality="2560", kind=model(pkg, "OrganizationKind")("pickup_point")
    )
    shop = next(s for s in shops.items if s.email)

    # A collaboration meeting starting in a few seconds (so the test can see it held).
    starts = (datetime.now(STOCKHOLM) + timedelta(seconds=12)).replace(tzinfo=None, microsecond=0)
    body = model(pkg, "MeetingCreate")(
        network_id=group.id,
        kind=model(pkg, "MeetingKind")("collaboration_meeting"),
        title="Samverkansmöte (genererad klient)",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        venue="Kommunhuset, Älvsbyn",
        instructor_ids=[sara.id, lena.id],
    )
    meeting = api(pkg, "meetings.v1_meetings_create_meeting").sync(client=admin, body=body)
    assert meeting.status == "draft"
    api(pkg, "meetings.v1_meetings_meeting_id_schedule_schedule_meeting").sync(meeting.id, client=admin)
    invite = model(pkg, "InvitationCreate")(organization_ids=[shop.id])
    api(pkg, "meetings.v1_meetings_meeting_id_invitations_invite").sync(meeting.id, client=admin, body=invite)
    sent = api(pkg, "meetings.v1_meetings_meeting_id_send_invitations_send_invitations").sync(
        meeting.id, client=admin
    )
    assert sent.status == "invitations_sent"

    # The shop follows the link in its e-mail and registers a member of staff (no account).
    text = wait_for_mail(mail, shop.email, "/rsvp/")
    token = re.search(r"/rsvp/([A-Za-z0-9_\-.]+)", text).group(1)  # type: ignore[union-attr]
    person = model(pkg, "PersonIn")(
        name="Omar Said", email="omar.said@ombud.example", mailing_list_consent=True
    )
    outcome = api(pkg, "meeting_links.v1_invitations_token_registrations_register_through_invitation").sync(
        token, client=public, body=model(pkg, "RegistrationRequest")(people=[person])
    )
    assert [r.status for r in outcome.registrations] == ["confirmed"]

    # The meeting starts; Omar is checked in by hand; it is held and closed.
    registrations = api(pkg, "meetings.v1_meetings_meeting_id_registrations_list_registrations").sync(
        meeting.id, client=admin
    )
    omar = registrations.items[0].participant_id
    time.sleep(max(0.0, (starts.replace(tzinfo=STOCKHOLM) - datetime.now(STOCKHOLM)).total_seconds() + 1))
    attendance = model(pkg, "AttendanceRecord")(
        participant_id=omar, attendance=model(pkg, "Attendance")("attended")
    )
    api(pkg, "meetings.v1_meetings_meeting_id_attendance_record_attendance").sync(
        meeting.id, client=admin, body=attendance
    )
    api(pkg, "meetings.v1_meetings_meeting_id_hold_hold_meeting").sync(meeting.id, client=admin)
    closed = api(pkg, "meetings.v1_meetings_meeting_id_close_close_meeting").sync(meeting.id, client=admin)
    assert closed.status == "closed"

    # The shop is certified; anyone can verify it from its sticker's code.
    certs = api(pkg, "certifications.v1_certifications_list_certifications").sync(
        client=admin, organization=shop.id
    )
    [cert] = certs.items
    assert cert.status == "active" and isinstance(cert.id, UUID)
    code = cert.verify_url.rsplit("/", 1)[1]
    verified = api(pkg, "certifications.v1_verify_code_verify_certification").sync(code, client=public)
    assert verified.valid is True and verified.organization_name == shop.name
