"""Loads plugins from the `tmn` entry-point group and calls their hooks in isolation.

Every call has a timeout; a plugin that raises or hangs is logged (type of error, never the
values it was given), counted, and reported as degraded, and the caller goes on without it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pluggy
import structlog

from service.pluginspec import PROJECT, TmnSpec
from service.settings import Settings, SettingsError

logger = structlog.get_logger("tmn.plugins")


class PluginFailure(Exception):
    """A plugin raised, timed out, or answered something unusable."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"{plugin}: {reason}")
        self.plugin = plugin
        self.reason = reason


class PluginStatus(msgspec.Struct, kw_only=True):
    name: str
    version: str | None
    hooks: list[str]
    health: str  # "ok" or "degraded"
    calls: int
    failures: int
    timeouts: int
    last_error: str | None
    last_error_at: datetime | None


@dataclass
class _Stats:
    version: str | None = None
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_call_failed: bool = False
    load_error: str | None = None
    hooks: list[str] = field(default_factory=list)


def parse_plugin_config(raw: str) -> dict[str, dict[str, Any]]:
    try:
        config = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise SettingsError(f"TMN_PLUGIN_CONFIG is not JSON: {exc.msg}") from exc
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise SettingsError('TMN_PLUGIN_CONFIG must be an object of objects: {"plugin": {...}}')
    return config


class PluginHost:
    def __init__(self, settings: Settings, *, extra: Iterable[tuple[str, object]] = ()) -> None:
        self.settings = settings
        self.timeout = settings.plugin_timeout_seconds
        self.config = parse_plugin_config(settings.plugin_config)
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(TmnSpec)
        self.stats: dict[str, _Stats] = {}
        for ep in importlib.metadata.entry_points(group=PROJECT):
            if self._enabled(ep.name):
                self._load(ep)
        for name, plugin in extra:
            self._register(name, plugin, version=None)

    def _enabled(self, name: str) -> bool:
        return not self.settings.plugins or name in self.settings.plugins

    def _load(self, ep: importlib.metadata.EntryPoint) -> None:
        version = ep.dist.version if ep.dist is not None else None
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not stop the API
            self.stats[ep.name] = _Stats(version=version, load_error=f"cannot load: {type(exc).__name__}")
            logger.error("plugin failed to load", plugin=ep.name, error=type(exc).__name__)
            return
        self._register(ep.name, plugin, version)

    def _register(self, name: str, plugin: object, version: str | None) -> None:
        self.pm.register(plugin, name=name)
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self.stats[name] = _Stats(version=version, hooks=hooks)

    def names(self) -> list[str]:
        return sorted(self.stats)

    def implementers(self, hook: str) -> list[str]:
        return [impl.plugin_name for impl in getattr(self.pm.hook, hook).get_hookimpls()]

    async def call(self, hook: str, plugin: str, *, time_limit: float | None = None, **kwargs: Any) -> Any:
        """Call one plugin's implementation of `hook`, isolated; raises PluginFailure. `time_limit`
        overrides the host's for calls known to be long (a carrier's whole registry)."""
        impls = [i for i in getattr(self.pm.hook, hook).get_hookimpls() if i.plugin_name == plugin]
        if not impls:
            raise PluginFailure(plugin, f"does not implement {hook}")
        impl = impls[0]
        kwargs = {"config": self.config.get(plugin, {}), **kwargs}
        args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        stats = self.stats[plugin]
        stats.calls += 1
        limit = self.timeout if time_limit is None else time_limit
        try:
            if inspect.iscoroutinefunction(impl.function):
                result = await asyncio.wait_for(impl.function(**args), limit)
            else:
                # A sync plugin runs in a thread, so a hang costs a thread, never the event loop.
                result = await asyncio.wait_for(asyncio.to_thread(impl.function, **args), limit)
        except TimeoutError:
            stats.timeouts += 1
            self._failed(plugin, hook, f"timed out after {limit:g} s")
            raise PluginFailure(plugin, "timed out") from None
        except Exception as exc:
            self._failed(plugin, hook, f"raised {type(exc).__name__}")
            raise PluginFailure(plugin, f"raised {type(exc).__name__}") from exc
        stats.last_call_failed = False
        return result

    async def call_all(
        self, hook: str, *, time_limit: float | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Call every implementation concurrently; returns (answers, failures) keyed by plugin."""
        names = self.implementers(hook)
        outcomes = await asyncio.gather(
            *(self.call(hook, n, time_limit=time_limit, **kwargs) for n in names), return_exceptions=True
        )
        answers: dict[str, Any] = {}
        failures: dict[str, str] = {}
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, PluginFailure):
                failures[name] = outcome.reason
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                answers[name] = outcome
        return answers, failures

    def _failed(self, plugin: str, hook: str, reason: str) -> None:
        stats = self.stats[plugin]
        stats.failures += 1
        stats.last_error = f"{hook}: {reason}"
        stats.last_error_at = datetime.now(UTC)
        stats.last_call_failed = True
        logger.warning("plugin call failed", plugin=plugin, hook=hook, reason=reason)

    def degraded(self, name: str) -> bool:
        """Degraded: it failed to load, or its most recent call failed."""
        stats = self.stats[name]
        return stats.load_error is not None or stats.last_call_failed

    def status(self) -> list[PluginStatus]:
        return [
            PluginStatus(
                name=name,
                version=s.version,
                hooks=s.hooks,
                health="degraded" if self.degraded(name) else "ok",
                calls=s.calls,
                failures=s.failures,
                timeouts=s.timeouts,
                last_error=s.load_error or s.last_error,
                last_error_at=s.last_error_at,
            )
            for name, s in sorted(self.stats.items())
        ]
