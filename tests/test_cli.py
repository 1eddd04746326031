"""The `tmn` command: openapi, migrate, seed, serve, and one run of the real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

from service.cli import main, render_openapi
from service.db import create_engine
from service.geography.models import County, Municipality
from service.migrate import current_revisions, head_revisions
from service.networks.models import Network, NetworkMember
from service.organizations.models import Organization
from service.participants.models import Participant
from service.settings import Settings
from tests.conftest import PgDatabases, new_database_url

ROOT = Path(__file__).resolve().parent.parent
COMMITTED_OPENAPI = ROOT / "openapi" / "openapi.json"
TMN = ROOT / ".venv" / "bin" / "tmn"


def tmn(*args: str, url: str | None = None, data_dir: Path | None = None) -> Result:
    """Run `tmn ARGS` in-process against a database (None: the embedded default in data_dir)."""
    env: dict[str, str | None] = {"TMN_DATABASE_URL": url}
    if data_dir is not None:
        env["TMN_DATA_DIR"] = str(data_dir)
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def counts(url: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        engine = create_engine(Settings(database_url=url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                result = {}
                for model in (County, Municipality, Network, Organization, Participant, NetworkMember):
                    result[model.__tablename__] = (
                        await conn.scalar(select(func.count()).select_from(model))
                    ) or 0
                return result
        finally:
            await engine.dispose()

    return asyncio.run(go())


def revisions(url: str) -> set[str]:
    async def go() -> set[str]:
        engine = create_engine(Settings(database_url=url), poolclass=NullPool)
        try:
            return await current_revisions(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
async def fresh_url(backend: str, pg_databases: PgDatabases, tmp_root: Path) -> str:
    return await new_database_url(backend, pg_databases, tmp_root)


@pytest.fixture
async def fresh_pg_url(pg_databases: PgDatabases, tmp_root: Path) -> str:
    return await new_database_url("postgresql", pg_databases, tmp_root)


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace uvicorn.run, recording its calls, so `tmn serve` never listens."""
    calls: list[dict[str, Any]] = []

    def fake_run(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return calls


# --- openapi -------------------------------------------------------------------------------------


def test_committed_openapi_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert COMMITTED_OPENAPI.exists(), "openapi/openapi.json is a tracked artifact; run `tmn openapi`"
    result = tmn("openapi", "--check")
    assert result.exit_code == 0, result.output
    assert "is current" in result.output
    assert COMMITTED_OPENAPI.read_text(encoding="utf-8") == render_openapi()


def test_openapi_check_fails_on_drift(tmp_path: Path) -> None:
    drifted = json.loads(COMMITTED_OPENAPI.read_text(encoding="utf-8"))
    drifted["info"]["version"] = "0.0.0-drifted"
    copy = tmp_path / "openapi.json"
    copy.write_text(
        json.dumps(drifted, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    before = copy.read_text(encoding="utf-8")

    result = tmn("openapi", "--check", "-o", str(copy))
    assert result.exit_code == 1, result.output
    assert "out of date" in result.output
    assert "tmn openapi" in result.output
    # --check never writes.
    assert copy.read_text(encoding="utf-8") == before

    # Even whitespace is drift: the file is compared byte for byte.
    copy.write_text(render_openapi().rstrip("\n"), encoding="utf-8")
    assert tmn("openapi", "--check", "-o", str(copy)).exit_code == 1

    missing = tmp_path / "missing.json"
    assert tmn("openapi", "--check", "-o", str(missing)).exit_code == 1
    assert not missing.exists()


def test_openapi_writes_what_check_accepts(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "openapi.json"
    result = tmn("openapi", "-o", str(target))
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    assert "/v1/networks" in document["paths"]
    assert tmn("openapi", "--check", "-o", str(target)).exit_code == 0


# --- migrate and seed ----------------------------------------------------------------------------


def test_seed_before_migrate_is_refused(fresh_url: str) -> None:
    result = tmn("seed", url=fresh_url)
    assert result.exit_code == 1, result.output
    assert "tmn migrate" in result.output
    assert revisions(fresh_url) == set()


def test_migrate_then_seed(fresh_url: str) -> None:
    result = tmn("migrate", url=fresh_url)
    assert result.exit_code == 0, result.output
    assert revisions(fresh_url) == head_revisions()
    # Migrating again is a no-op.
    assert tmn("migrate", url=fresh_url).exit_code == 0

    result = tmn("seed", url=fresh_url)
    assert result.exit_code == 0, result.output
    assert "21 counties and 290 municipalities inserted or corrected" in result.output
    assert "demo data: skipped" in result.output
    after = counts(fresh_url)
    assert after["county"] == 21
    assert after["municipality"] == 290
    assert after["network"] == after["organization"] == after["participant"] == 0

    # Reference data is idempotent.
    result = tmn("seed", url=fresh_url)
    assert result.exit_code == 0, result.output
    assert "0 counties and 0 municipalities" in result.output
    assert counts(fresh_url) == after


def test_seed_demo_twice_is_idempotent(fresh_url: str) -> None:
    assert tmn("migrate", url=fresh_url).exit_code == 0

    first = tmn("seed", "--demo", url=fresh_url)
    assert first.exit_code == 0, first.output
    assert "demo data: created" in first.output
    after_first = counts(fresh_url)
    assert after_first["county"] == 21
    assert after_first["municipality"] == 290
    assert after_first["network"] > 0
    assert after_first["organization"] > 0
    assert after_first["participant"] > 0

    second = tmn("seed", "--demo", url=fresh_url)
    assert second.exit_code == 0, second.output
    assert "demo data: present" in second.output
    assert "0 counties and 0 municipalities" in second.output
    assert counts(fresh_url) == after_first


# --- serve ---------------------------------------------------------------------------------------


def test_serve_refuses_an_unmigrated_database(fresh_pg_url: str, no_server: list[dict[str, Any]]) -> None:
    result = tmn("serve", "--port", "1", url=fresh_pg_url)
    assert result.exit_code != 0, result.output
    assert "tmn migrate" in result.output
    assert no_server == []
    # It refuses; it does not migrate behind the operator's back.
    assert revisions(fresh_pg_url) == set()


def test_serve_refuses_an_unreachable_database(no_server: list[dict[str, Any]]) -> None:
    result = tmn("serve", url="postgresql+asyncpg://postgres@127.0.0.1:1/tmn")
    assert result.exit_code != 0, result.output
    assert "cannot reach the database" in result.output
    assert no_server == []


def test_serve_on_a_migrated_database(fresh_pg_url: str, no_server: list[dict[str, Any]]) -> None:
    assert tmn("migrate", url=fresh_pg_url).exit_code == 0
    result = tmn("serve", "--port", "8123", url=fresh_pg_url)
    assert result.exit_code == 0, result.output
    assert len(no_server) == 1
    call = no_server[0]
    assert call["app"] == "service.app:create_app"
    assert call["factory"] is True
    assert call["port"] == 8123
    assert call["host"] == "127.0.0.1"


def test_serve_embedded_migrates_and_seeds_first(tmp_path: Path, no_server: list[dict[str, Any]]) -> None:
    result = tmn("serve", url=None, data_dir=tmp_path)
    assert result.exit_code == 0, result.output
    assert len(no_server) == 1
    url = Settings(data_dir=str(tmp_path)).effective_database_url
    assert (tmp_path / "tmn.sqlite3").exists()
    assert revisions(url) == head_revisions()
    assert counts(url)["municipality"] == 290


# --- the real server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`tmn serve --demo` on the embedded default, as a subprocess; yields its base URL and log."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    env["TMN_DATA_DIR"] = str(tmp_path / "data")
    log_path = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(TMN), "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not ready within 60 s:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield base, log_path
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    # A clean shutdown on SIGTERM (uvicorn re-raises the signal once it has shut down).
    assert process.returncode in (0, -signal.SIGTERM), log_path.read_text()


_TAG_URLS = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_real_server_with_demo_data(served: tuple[str, Path]) -> None:
    base, log_path = served
    # `serve --demo` prints the demo API keys; act as the national administrator.
    admin = re.search(r"national_admin\s+\S+\s+(tmn_\S+)", log_path.read_text(encoding="utf-8"))
    headers = {"Authorization": f"Bearer {admin.group(1)}"} if admin else {}
    with httpx.Client(base_url=base, timeout=10, headers=headers) as api:
        response = api.get("/v1/networks", params={"county": "25", "limit": 200})
        assert response.status_code == 200, response.text
        names = {n["name"] for n in response.json()["items"]}
        assert {
            "Länsvis arbetsgrupp Norrbotten",
            "Lokal arbetsgrupp Älvsbyn",
            "Lokal arbetsgrupp Luleå",
            "Lokalt nätverk Älvsbyn",
            "Lokalt nätverk Luleå",
        } <= names

    # Probes and docs need no credentials.
    with httpx.Client(base_url=base, timeout=10) as http:
        ready = http.get("/health/ready")
        assert ready.status_code == 200
        assert all(check["ok"] for check in ready.json()["checks"])

        docs = http.get("/docs", follow_redirects=True)
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        html = docs.text
        urls = _TAG_URLS.findall(html)
        assert "/docs/assets/swagger-ui-bundle.js" in urls
        assert "/docs/assets/swagger-ui.css" in urls
        for url in urls:
            assert not re.match(r"(?i)^(https?:)?//", url), f"{url} is not served locally"
            assert url.startswith("/docs/assets/"), url
        assert not re.search(r"(?i)<script\b[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", html)

        bundle = http.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200
        assert "javascript" in bundle.headers["content-type"]
        assert len(bundle.content) > 100_000


def test_meetings_tick_and_certifications_notify(tmp_path: Path) -> None:
    """The chores the worker runs on a schedule, once from the command line: JSON reports, and a
    second run finds nothing left to do."""
    assert tmn("migrate", url=None, data_dir=tmp_path).exit_code == 0
    assert tmn("seed", "--demo", url=None, data_dir=tmp_path).exit_code == 0
    for _ in range(2):
        tick = tmn("meetings", "tick", url=None, data_dir=tmp_path)
        assert tick.exit_code == 0, tick.output
        assert json.loads(tick.output.strip().splitlines()[-1]) == {
            "reminders_sent": 0,
            "reminders_skipped": 0,
            "messages_queued": 0,
            "offers_lapsed": 0,
        }
        notify = tmn("certifications", "notify", url=None, data_dir=tmp_path)
        assert notify.exit_code == 0, notify.output
        assert json.loads(notify.output.strip().splitlines()[-1]) == {
            "follow_up_due": 0,
            "in_grace": 0,
            "lapsed": 0,
            "messages_queued": 0,
        }


def test_credentials_init_key_writes_once(tmp_path: Path) -> None:
    from service.certifications.credentials import IssuerKey

    path = tmp_path / "keys" / "credential-key.pem"
    first = CliRunner().invoke(main, ["credentials", "init-key", str(path)], catch_exceptions=False)
    assert first.exit_code == 0 and "wrote a new key" in first.output
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    kid = IssuerKey.from_pem(path.read_bytes()).kid
    second = CliRunner().invoke(main, ["credentials", "init-key", str(path)], catch_exceptions=False)
    assert "kept the key" in second.output and kid in second.output
    assert IssuerKey.from_pem(path.read_bytes()).kid == kid
