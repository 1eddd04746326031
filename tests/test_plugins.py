"""The plugin system: entry points, settings, isolation of plugins that raise or hang."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from service.pluginhost import PluginHost
from service.pluginspec import Contact, hookimpl
from service.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import asyncio, json
from service.pluginhost import PluginHost
from service.settings import Settings
host = PluginHost(Settings.from_env())
answers, failures = asyncio.run(host.call_all("tmn_municipality_contacts", municipality_code="2560"))
print(json.dumps({
    "plugins": {s.name: {"version": s.version, "hooks": s.hooks} for s in host.status()},
    "contacts": {name: [c.organization for c in found] for name, found in answers.items()},
}))
"""


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to install the test plugin (bin/bootstrap installs it)")
    return found


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install tests/plugin_pkg the way a municipality would install a plugin package."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            "--python",
            sys.executable,
            str(ROOT / "tests" / "plugin_pkg"),
        ],
        check=True,
        timeout=300,
    )
    return target


def _probe(site: Path, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    environ |= {"PYTHONPATH": str(site)} | env
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # The last line: plugins that fail in the probe (no database here) may log before it.
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_third_party_package_is_loaded_from_its_entry_point(installed_plugin: Path) -> None:
    everything = _probe(installed_plugin)
    assert {"hello", "file", "smtp", "webhooks", "police", "customs", "municipality"} <= set(
        everything["plugins"]
    )
    found = _probe(
        installed_plugin,
        TMN_PLUGINS="hello,smtp",
        TMN_PLUGIN_CONFIG='{"hello": {"organization": "Hej kommun"}}',
    )
    assert found["plugins"]["hello"] == {"version": "0.3.0", "hooks": ["tmn_municipality_contacts"]}
    assert found["contacts"] == {"hello": ["Hej kommun"]}


def test_settings_choose_the_plugins(installed_plugin: Path) -> None:
    found = _probe(installed_plugin, TMN_PLUGINS="file,smtp")
    assert set(found["plugins"]) == {"file", "smtp"}
    assert found["contacts"] == {}


def test_plugin_config_must_be_an_object_of_objects() -> None:
    with pytest.raises(SettingsError):
        PluginHost(Settings(plugin_config='{"hello": 1}'))
    with pytest.raises(SettingsError):
        PluginHost(Settings(plugin_config="{not json"))


class Good:
    @hookimpl
    def tmn_municipality_contacts(self, municipality_code: str) -> list[Contact]:
        return [Contact(organization=f"Kommun {municipality_code}", role="Samordnare", kind="office")]


class Raises:
    @hookimpl
    def tmn_municipality_contacts(self, municipality_code: str) -> list[Contact]:
        raise ConnectionError("registry down")


class SleepsSync:
    @hookimpl
    def tmn_municipality_contacts(self, municipality_code: str) -> list[Contact]:
        time.sleep(2)
        return []


class SleepsAsync:
    @hookimpl
    async def tmn_municipality_contacts(self, municipality_code: str) -> list[Contact]:
        await asyncio.sleep(30)
        return []


def isolated_host(timeout: float = 0.3) -> PluginHost:
    settings = Settings(plugins=("none-installed",), plugin_timeout_seconds=timeout)
    return PluginHost(
        settings,
        extra=[("good", Good()), ("raises", Raises()), ("sync", SleepsSync()), ("async", SleepsAsync())],
    )


async def test_failing_and_hanging_plugins_are_isolated() -> None:
    host = isolated_host()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    started = time.monotonic()
    answers, failures = await host.call_all("tmn_municipality_contacts", municipality_code="2560")
    elapsed = time.monotonic() - started
    beat.cancel()
    assert [c.organization for c in answers["good"]] == ["Kommun 2560"]
    assert failures == {"raises": "raised ConnectionError", "sync": "timed out", "async": "timed out"}
    assert elapsed < 1.5  # bounded by the timeout, not by the sleepers
    assert ticks >= 10  # the event loop kept running while plugins hung
    status = {s.name: s for s in host.status()}
    assert status["good"].health == "ok" and status["good"].calls == 1
    assert status["raises"].health == "degraded"
    assert status["raises"].last_error == "tmn_municipality_contacts: raised ConnectionError"
    assert status["async"].timeouts == 1 and status["async"].health == "degraded"


async def test_the_api_reports_degraded_plugins_and_keeps_answering(client) -> None:
    host = isolated_host()
    client.app.state.plugins = host

    async def call() -> Any:
        return await host.call_all("tmn_municipality_contacts", municipality_code="2580")

    future = client.blocking_portal.start_task_soon(call)
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/v1/counties/25")).status_code == 200
    future.result(timeout=5)
    plugins = {p["name"]: p for p in (await client.get("/v1/plugins")).json()}
    assert plugins["raises"]["health"] == "degraded" and plugins["good"]["health"] == "ok"
    ready = await client.get("/health/ready")
    assert ready.status_code == 200  # a degraded plugin degrades one integration, not the API
    assert {p["name"]: p["health"] for p in ready.json()["plugins"]}["sync"] == "degraded"


def test_a_plugin_that_cannot_load_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as metadata

    broken = metadata.EntryPoint(name="broken", value="tmn_no_such_module_anywhere", group="tmn")
    real = metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        return [*found, broken] if kwargs.get("group") == "tmn" else found

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    host = PluginHost(msgspec.structs.replace(Settings(), plugins=()))
    status = {s.name: s for s in host.status()}
    assert status["broken"].health == "degraded"
    assert status["broken"].last_error == "cannot load: ModuleNotFoundError"
    assert status["file"].health == "ok"
