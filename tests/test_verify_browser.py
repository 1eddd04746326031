"""The verification page, as a phone that scanned the sticker sees it: the real server (`tmn serve`
as a process, on its embedded database) and a real headless browser (Debian's Chromium)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from service.certifications.models import Certification, CertificationState
from service.db import create_engine, create_sessionmaker
from service.migrate import upgrade
from service.organizations.models import Organization, OrganizationKind
from service.seed import seed
from service.settings import Settings
from tests.conftest import IN_CI
from tests.test_cli import TMN, _free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not IN_CI, reason="Chromium is not installed (CI installs Debian's package)"
)
ACTIVE_CODE, REVOKED_CODE = "VerifyMeActiveCode0000001", "VerifyMeRevokedCode000002"


async def _prepare(data_dir: Path) -> None:
    """An embedded database with two certified shops, one of them revoked."""
    engine = create_engine(Settings(data_dir=str(data_dir)))
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session:
        await seed(session, demo=False)
        for serial, (name, code, state) in enumerate(
            [
                ("Storgatans Livs", ACTIVE_CODE, CertificationState.ACTIVE),
                ("Kiosken vid torget", REVOKED_CODE, CertificationState.REVOKED),
            ],
            start=1,
        ):
            org = Organization(
                id=uuid4(),
                kind=OrganizationKind.PICKUP_POINT,
                name=name,
                street_address="Storgatan 1",
                postal_code="94231",
                city="Älvsbyn",
                latitude=65.676,
                longitude=21.004,
                municipality_code="2560",
                county_code="25",
            )
            session.add(org)
            await session.flush()
            today = date.today()
            session.add(
                Certification(
                    organization_id=org.id,
                    serial=serial,
                    number=f"TMN-2560-{serial:06d}",
                    sticker_serial=f"D-{serial:06d}",
                    verify_code=code,
                    municipality_code="2560",
                    state=state,
                    issued_on=today,
                    valid_from=today,
                    window_opens=date(today.year + 1, 1, 1),
                    valid_until=date(today.year + 1, 6, 1),
                    grace_until=date(today.year + 1, 9, 1),
                )
            )
        await session.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("verify")
    data_dir = root / "data"
    asyncio.run(_prepare(data_dir))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    env.update(TMN_DATA_DIR=str(data_dir), TMN_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [str(TMN), "serve", "--port", str(port)], cwd=root, env=env, stdout=log, stderr=log
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def chromium(*args: str) -> str:
    assert CHROMIUM is not None, "CI must install Debian's chromium package"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_page_shows_the_status_without_personal_data(server: str, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", f"{server}/verify/{ACTIVE_CODE}")
    assert 'data-status="active"' in dom
    assert "Certifierad" in dom and "Storgatans Livs" in dom and "Älvsbyn" in dom
    assert "TMN-2560-000001" in dom and "Giltig till och med" in dom
    assert "@" not in dom  # no e-mail address, nobody's name but the shop's
    shot = tmp_path / "verify.png"
    chromium("--window-size=390,844", f"--screenshot={shot}", f"{server}/verify/{ACTIVE_CODE}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 2000


def test_a_revoked_or_unknown_code(server: str) -> None:
    assert 'data-status="revoked"' in chromium("--dump-dom", f"{server}/verify/{REVOKED_CODE}")
    assert "Okänd kod" in chromium("--dump-dom", f"{server}/verify/NoSuchCodeAtAll00000001")
