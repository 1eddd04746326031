"""The `tmn` command: serve, migrate, seed, openapi, worker, keys, meetings, certifications."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from service.auth.principal import Principal, Role
from service.context import Context
from service.db import create_engine, create_sessionmaker, utcnow
from service.problems import Problem
from service.settings import Settings, SettingsError

T = TypeVar("T")
DEFAULT_OPENAPI = Path("openapi/openapi.json")
GRACEFUL_SHUTDOWN_SECONDS = 30


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(coro_fn: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn(_settings()))


async def _migrate(settings: Settings) -> None:
    from service.migrate import upgrade

    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _seed(settings: Settings, demo: bool) -> str:
    from service.seed import seed

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            report = await seed(session, demo=demo)
            await session.commit()
    finally:
        await engine.dispose()
    lines = [
        f"reference data: {report.counties_changed} counties and {report.municipalities_changed} "
        f"municipalities inserted or corrected; demo data: {report.demo}"
    ]
    if report.demo_keys:
        lines.append("demo API keys (published in the README; for trying the API, never for production):")
        lines += [f"  {role:22} {scope:8} {key}" for role, scope, key in report.demo_keys]
    return "\n".join(lines)


async def _require_migrated(settings: Settings) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from service.migrate import current_revisions, head_revisions

    engine = create_engine(settings)
    try:
        current = await current_revisions(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(
            f"cannot reach the database ({type(exc).__name__}); check TMN_DATABASE_URL"
        ) from exc
    finally:
        await engine.dispose()
    if current != head_revisions():
        raise click.ClickException(
            "the database schema is not at the newest migration "
            f"(at {sorted(current) or 'nothing'}); run `tmn migrate` first"
        )


@contextmanager
def _exit_cleanly_on_stop_signals() -> Iterator[None]:
    """Make SIGTERM and SIGINT end `tmn serve` with status 0.

    uvicorn takes these signals over while it serves: it stops accepting connections, lets the
    requests in flight finish (timeout_graceful_shutdown), runs the app's shutdown, then puts the
    handlers it found back and raises the signal again. With the default handlers that second
    raise kills the process (status -15, or a KeyboardInterrupt), so a clean stop looked like a
    crash to process managers. The handlers it finds are these, which exit with 0 (and, in the
    moment before uvicorn takes over, simply stop the process)."""
    import signal

    def stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.group()
def main() -> None:
    """TMN: the coordination API for Tillsammans mot nätdroger."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option("--demo", is_flag=True, help="Also load the northern demo data before serving.")
def serve(host: str, port: int, workers: int, reload: bool, demo: bool) -> None:
    """Serve the API. On the embedded SQLite default, migrate and seed first."""
    import uvicorn

    settings = _settings()
    if settings.is_embedded:
        asyncio.run(_migrate(settings))
        click.echo(asyncio.run(_seed(settings, demo)), err=True)
    else:
        asyncio.run(_require_migrated(settings))
        if demo:
            click.echo(asyncio.run(_seed(settings, True)), err=True)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "proxy_headers": True,
        # The app logs one line per request itself, without query strings (personal data).
        "access_log": False,
        # On SIGTERM: stop accepting, let requests in flight finish for up to this long.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    if workers > 1 and not reload:
        _serve_workers("service.app:create_app", workers=workers, **options)
        return
    with _exit_cleanly_on_stop_signals():
        uvicorn.run("service.app:create_app", workers=None if reload else workers, reload=reload, **options)


def _serve_workers(app: str, *, workers: int, **options: Any) -> None:
    """uvicorn's process supervisor, with one change: on SIGTERM it closes its own copy of the
    listening socket before it stops the workers. Otherwise the port stays open while they finish
    their requests, and new connections wait in the backlog until they are reset, instead of being
    refused at once (so that a proxy tries another replica)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    config = uvicorn.Config(app, workers=workers, **options)
    Supervisor(config, sockets=[config.bind_socket()]).run()


@main.command()
def worker() -> None:
    """Deliver the outbox (e-mail) and send due meeting reminders until stopped; several may run
    against one PostgreSQL."""
    import signal

    from service.directory.service import DirectoryCache
    from service.meetings.mail import Outside
    from service.meetings.ticker import MeetingTicker
    from service.observability.tracing import setup_tracing, tracer_of
    from service.outbox.service import OutboxWorker
    from service.pluginhost import PluginHost

    async def go(settings: Settings) -> None:
        await _require_migrated(settings)
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        host = PluginHost(settings)
        tracing = setup_tracing(settings)
        if tracing is not None:
            tracing.instrument(engine)
        outbox = OutboxWorker(sessionmaker, host, settings, tracer=tracer_of(tracing, "tmn.outbox"))
        directory = DirectoryCache(ttl=settings.directory_cache_seconds)
        ticker = MeetingTicker(
            sessionmaker,
            Outside(settings=settings, plugins=host, directory_cache=directory),
            tracer=tracer_of(tracing, "tmn.worker"),
        )

        def stop() -> None:
            # Both stop after what they are doing: the outbox finishes (and records) the batch it
            # leased, so no message stays claimed; the ticker finishes its tick.
            outbox.stop()
            ticker.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # One handler per signal: a second add_signal_handler would replace the first.
            loop.add_signal_handler(sig, stop)
        click.echo(f"worker {outbox.name} delivering through {settings.email_transport}", err=True)
        try:
            await asyncio.gather(outbox.run(), ticker.run())
        finally:
            if tracing is not None:
                await tracing.shutdown()  # sends the spans still queued
            await engine.dispose()

    _run(go)


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    _run(_migrate)
    click.echo("database at the newest migration", err=True)


@main.command()
@click.option("--demo", is_flag=True, help="Add the northern demo data (idempotent).")
def seed(demo: bool) -> None:
    """Load reference data: the 21 counties and 290 municipalities."""

    async def go(settings: Settings) -> str:
        await _require_migrated(settings)
        return await _seed(settings, demo)

    click.echo(_run(go), err=True)


async def _chore(settings: Settings, chore: Callable[[Any, Any], Coroutine[Any, Any, Any]]) -> str:
    """Run one of the worker's chores once, as the worker would (plugins, directory cache), and
    print its report as JSON; a problem it raises is the command's error message."""
    from service.directory.service import DirectoryCache
    from service.meetings.mail import Outside
    from service.pluginhost import PluginHost

    await _require_migrated(settings)
    engine = create_engine(settings)
    try:
        outside = Outside(
            settings=settings,
            plugins=PluginHost(settings),
            directory_cache=DirectoryCache(ttl=settings.directory_cache_seconds),
        )
        report = await chore(create_sessionmaker(engine), outside)
    except Problem as exc:
        raise click.ClickException(str(exc.detail)) from exc
    finally:
        await engine.dispose()
    return json.dumps(msgspec.to_builtins(report), ensure_ascii=False)


@main.group()
def meetings() -> None:
    """Meeting chores that the worker also runs on its own schedule."""


@meetings.command("tick")
def meetings_tick() -> None:
    """Queue due reminders and pass lapsed seat offers on, once; safe to run at any time."""
    from service.meetings.ticker import run_tick

    click.echo(_run(lambda settings: _chore(settings, run_tick)))


@main.command()
@click.argument("carrier")
@click.option("--dry-run", is_flag=True, help="Report what would change, change nothing.")
@click.option("--force", is_flag=True, help="Apply even past the safety limits (many errors or closures).")
def sync(carrier: str, dry_run: bool, force: bool) -> None:
    """Pull CARRIER's pickup points from its registry (a registry plugin) and apply them."""
    from service.registries.pull import run_sync

    async def pull(sessionmaker: Any, outside: Any) -> Any:
        return await run_sync(sessionmaker, outside, carrier, dry_run=dry_run, force=force)

    click.echo(_run(lambda settings: _chore(settings, pull)))


@main.group()
def certifications() -> None:
    """Certification chores that the worker also runs on its own schedule."""


@certifications.command("notify")
def certifications_notify() -> None:
    """Record and e-mail certifications that became due or lapsed; a second run changes nothing."""
    from service.certifications.notify import run_notify

    click.echo(_run(lambda settings: _chore(settings, run_notify)))


@main.group()
def credentials() -> None:
    """The Ed25519 key that signs certifications as verifiable credentials."""


@credentials.command("init-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def credentials_init_key(path: Path) -> None:
    """Write a new key to PATH (mode 0600) unless one is there; point TMN_CREDENTIAL_KEY_FILE at it.
    Every server and worker of one installation must use the same key."""
    import os

    from service.certifications.credentials import IssuerKey

    if path.exists():
        key = IssuerKey.from_pem(path.read_bytes())
        click.echo(f"kept the key in {path} (kid {key.kid})", err=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    key = IssuerKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.to_pem())
    click.echo(f"wrote a new key to {path} (kid {key.kid})", err=True)


@main.group()
def keys() -> None:
    """API keys for machine clients."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. 'Älvsbyn case system'.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role if r is not Role.SYSTEM]))
@click.option("--municipality", help="Municipality code (municipal coordinator, instructor, viewer).")
@click.option("--county", help="County code (county coordinator, instructor, viewer).")
@click.option("--carrier", help="Carrier code (carrier integration).")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Days until the key expires.")
def keys_create(
    name: str,
    role: str,
    municipality: str | None,
    county: str | None,
    carrier: str | None,
    expires_days: int | None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from service.api_keys.schemas import ApiKeyCreate
    from service.api_keys.service import ApiKeyService

    async def go(settings: Settings) -> str:
        await _require_migrated(settings)
        expires = utcnow() + timedelta(days=expires_days) if expires_days else None
        try:
            data = msgspec.convert(
                {
                    "name": name,
                    "role": role,
                    "municipality_code": municipality,
                    "county_code": county,
                    "carrier": carrier,
                    "expires_at": expires,
                },
                ApiKeyCreate,
            )
        except msgspec.ValidationError as exc:
            raise click.ClickException(str(exc)) from exc
        async with _session(settings) as ctx:
            try:
                record, key = await ApiKeyService(ctx).create(data)
            except Problem as exc:
                raise click.ClickException(exc.detail) from exc
            await ctx.session.commit()
        click.echo(
            f"created key {record.prefix} ({record.role.value}); store it now, it is not shown again:",
            err=True,
        )
        return key

    click.echo(_run(go))


@keys.command("list")
def keys_list() -> None:
    """List keys (prefix, role, scope, status); never their secrets."""
    from service.api_keys.service import ApiKeyService

    async def go(settings: Settings) -> None:
        await _require_migrated(settings)
        async with _session(settings) as ctx:
            page = await ApiKeyService(ctx).page(limit=200, cursor=None)
        for k in page.items:
            scope = k.municipality_code or k.county_code or k.carrier or "nation"
            click.echo(f"{k.prefix}  {k.role.value:22} {scope:8} {k.status:8} {k.name}")

    _run(go)


@keys.command("revoke")
@click.argument("key")
def keys_revoke(key: str) -> None:
    """Revoke a key, by its prefix or id."""
    from service.api_keys.service import ApiKeyService

    async def go(settings: Settings) -> None:
        await _require_migrated(settings)
        async with _session(settings) as ctx:
            service = ApiKeyService(ctx)
            try:
                record = await service.revoke(await service.find(key))
            except Problem as exc:
                raise click.ClickException(exc.detail) from exc
            await ctx.session.commit()
        click.echo(f"revoked {record.prefix}", err=True)

    _run(go)


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[Context]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            session.info["principal_id"] = "cli"
            yield Context(session=session, principal=Principal.system())
    finally:
        await engine.dispose()


def openapi_document() -> dict[str, Any]:
    from service.app import create_app

    app = create_app(Settings())
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@main.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), default=DEFAULT_OPENAPI, show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 if the file differs from what the app generates.")
def openapi(output: Path, check: bool) -> None:
    """Write the OpenAPI 3.1 document."""
    text = render_openapi()
    if check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            click.echo(f"{output} is out of date; run `tmn openapi`", err=True)
            sys.exit(1)
        click.echo(f"{output} is current", err=True)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


if __name__ == "__main__":
    main()
