"""The dashboard as a coordinator sees it on a phone: the real server (`tmn serve --demo` as a
process) and Debian's headless Chromium, driven over the DevTools protocol: sign in through the
form, look at the national map, open a municipality, and take screenshots."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from service.reports.dashboard import STEP_COLOURS
from service.seed import demo_key
from tests.conftest import IN_CI
from tests.test_cli import TMN, _free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not IN_CI, reason="Chromium is not installed (CI installs Debian's package)"
)
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dashboard")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    env.update(TMN_DATA_DIR=str(root / "data"))
    base = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(TMN), "serve", "--demo", "--port", str(port)], cwd=root, env=env, stdout=log, stderr=log
        )
        try:
            _wait_for(f"{base}/health/ready", process, log_path)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


class Browser:
    """Just enough of the DevTools protocol: commands with ids, and waiting for an event."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=60))
            if message.get("id") == ident:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    async def wait_for_load(self) -> None:
        while True:
            if any(e.get("method") == "Page.loadEventFired" for e in self.events):
                self.events.clear()
                return
            self.events.append(json.loads(await asyncio.wait_for(self.ws.recv(), timeout=60)))

    async def go(self, url: str) -> None:
        self.events.clear()
        await self.send("Page.navigate", url=url)
        await self.wait_for_load()

    async def js(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> Image.Image:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.fixture
def devtools(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium with its DevTools port open; yields the page's WebSocket address."""
    assert CHROMIUM is not None, "CI must install Debian's chromium package"
    port = _free_port()
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={tmp_path / 'profile'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except (httpx.TransportError, ValueError):
                pass
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.2)
        yield str(pages[0]["webSocketDebuggerUrl"])
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def browser(devtools: str) -> AsyncIterator[Browser]:
    async with connect(devtools, max_size=None) as ws:
        b = Browser(ws)
        await b.send("Page.enable")
        await b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        yield b


def _has_colour(image: Image.Image, hex_colour: str) -> bool:
    wanted = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    colours = image.getcolors(maxcolors=1 << 20) or []
    return any(rgb == wanted and count > 50 for count, rgb in colours)


async def test_a_coordinator_signs_in_and_reads_the_map_on_a_phone(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    await browser.go(f"{server}/dashboard")
    assert await browser.js("location.pathname") == "/dashboard/sign-in"

    # Sign in through the form, as a person would.
    key = json.dumps(demo_key("demoadmn"))
    await browser.js(f"document.getElementById('credential').value = {key}")
    browser.events.clear()
    await browser.js("document.querySelector('form[action=\"/dashboard/sign-in\"]').submit()")
    await browser.wait_for_load()
    assert await browser.js("location.pathname") == "/dashboard"
    assert await browser.js("document.querySelectorAll('[data-map=progress] svg path').length") == 290
    # Usable on a phone: nothing wider than the screen, the map fits its width.
    assert await browser.js("document.documentElement.scrollWidth") <= PHONE["width"]
    assert (
        await browser.js("document.querySelector('[data-map=progress] svg').getBoundingClientRect().width")
        <= 390
    )
    stepped = await browser.js(
        "[...document.querySelectorAll('[data-map=progress] path')].filter(p => p.getAttribute('fill') !== '"
        + STEP_COLOURS[0]
        + "').length"
    )
    assert stepped >= 2  # the demo's Älvsbyn and Luleå have taken steps
    national = await browser.screenshot(tmp_path / "dashboard.png")
    assert national.width == PHONE["width"] * PHONE["deviceScaleFactor"]
    assert _has_colour(national, STEP_COLOURS[0])  # most of Sweden has not started

    # Follow the map's link to Älvsbyn.
    href = await browser.js(
        "document.querySelector('[data-map=progress] a[href$=\"/2560\"]').getAttribute('href')"
    )
    await browser.go(f"{server}{href}")
    assert (await browser.js("document.querySelector('h1').textContent")).startswith("Älvsbyn")
    assert await browser.js("document.querySelectorAll('[data-map=points] circle').length") >= 3
    assert await browser.js("document.querySelectorAll('.steps li').length") == 5
    assert await browser.js("document.documentElement.scrollWidth") <= PHONE["width"]
    page = await browser.screenshot(tmp_path / "alvsbyn.png")
    assert page.height > PHONE["height"]  # the whole page, not only the first screen

    # Signing out ends it.
    browser.events.clear()
    await browser.js("document.querySelector('form[action=\"/dashboard/sign-out\"]').submit()")
    await browser.wait_for_load()
    await browser.go(f"{server}/dashboard")
    assert await browser.js("location.pathname") == "/dashboard/sign-in"
