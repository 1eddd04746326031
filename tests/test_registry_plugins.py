"""The registry plugins: `registry_http` against a fake registry on loopback serving PostNord's and
Budbee's published sample answers, and `registry_csv` on files with a BOM, semicolons and decimal
commas. The hook implementations are called directly, and once through a PluginHost (its name and
its per-call timeout)."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import tmn_registry_csv
import tmn_registry_http

from service.pluginhost import PluginFailure, PluginHost
from service.pluginspec import PickupPointRecord
from service.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "carrier-samples"
ADDRESS = SAMPLES / "postnord_list_by_address.sthyregod.json"
COORDINATES = SAMPLES / "postnord_list_by_coordinates.sthyregod.json"
BUDBEE = SAMPLES / "budbee_boxes_validate_SE_11247.example.json"
EMPTY_PAGE = json.dumps({"servicePointInformationResponse": {"servicePoints": []}}).encode()
API_KEY = "not-a-real-key-1234"


class FakeRegistry:
    """A carrier's registry on loopback. `answers` maps a path to (status, body); the path
    `/servicepoints` answers `pages` by its `page` parameter (1-based; past the end: empty)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.pages: list[bytes] = []
        self.delay = 0.0
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.released = threading.Event()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                registry.requests.append((url.path, query, dict(self.headers.items())))
                if registry.delay:
                    registry.released.wait(registry.delay)
                if url.path == "/servicepoints":
                    page = int(query.get("page", ["1"])[0])
                    status, body = (
                        200,
                        (registry.pages[page - 1] if page <= len(registry.pages) else EMPTY_PAGE),
                    )
                else:
                    status, body = registry.answers.get(url.path, (404, b'{"message": "not found"}'))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the slow case: the caller gave up waiting, as it should

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    served = FakeRegistry()
    yield served
    served.close()


@pytest.fixture
def samples() -> Path:
    if not (ADDRESS.is_file() and COORDINATES.is_file() and BUDBEE.is_file()):
        pytest.skip(f"the carrier samples are not in {SAMPLES}")
    return SAMPLES


def postnord(registry: FakeRegistry, **extra: Any) -> dict[str, Any]:
    """The plugin's settings for PostNord's paged bulk list, as in production but on loopback."""
    carrier = {
        "url": f"{registry.base}/servicepoints",
        "params": {"apikey": API_KEY, "returnType": "json", "countryCode": "SE"},
        "headers": {"X-Trace": "tmn-test"},
        "paging": {"param": "page", "start": 1, "stop_when_empty": True, "max_pages": 1000},
        **extra,
    }
    return {"carriers": {"postnord": carrier}, "timeout_seconds": 5}


async def fetch(carrier: str, config: dict[str, Any]) -> list[PickupPointRecord]:
    records = await tmn_registry_http.tmn_fetch_pickup_points(carrier=carrier, config=config)
    assert records is not None
    return records


GISLAVED = PickupPointRecord(
    carrier_point_id="376062",
    name="ICA KVANTUM GISLAVED",
    kind="pickup_point",
    street_address="Stinsgatan 2",
    postal_code="33230",
    city="GISLAVED",
    latitude=57.303955262565,
    longitude=13.5433674461746,
    opening_hours="Mon 07:00-20:00, Tue 07:00-20:00, Wed 07:00-20:00, Thu 07:00-20:00, Fri 07:00-20:00, "
    "Sat 08:00-18:00, Sun 08:00-18:00",
)


async def test_postnord_fifteen_points_over_three_pages(registry: FakeRegistry, samples: Path) -> None:
    registry.pages = [ADDRESS.read_bytes(), COORDINATES.read_bytes()]
    records = await fetch("postnord", postnord(registry))

    assert [r.carrier_point_id for r in records] == [
        "376062", "376031", "376064", "377662", "377660", "376662", "376660", "377631", "375170", "114783",
        "592977", "586274", "592971", "592976", "586273",
    ]  # fmt: skip
    assert [page for _, query, _ in registry.requests for page in query["page"]] == ["1", "2", "3"]
    _path, query, headers = registry.requests[0]
    assert query["apikey"] == [API_KEY] and query["countryCode"] == ["SE"]
    assert headers["X-Trace"] == "tmn-test" and headers["Accept"] == "application/json"

    by_id = {r.carrier_point_id: r for r in records}
    assert by_id["376062"] == GISLAVED
    assert {r.kind for r in records} == {"pickup_point"}  # all are "Service agent" (groupTypeId 1)
    assert by_id["376031"].opening_hours == (
        "Mon 08:00-09:30 & 15:00-18:00, Tue 08:00-09:30 & 15:00-18:00, Wed 08:00-09:30 & 15:00-18:00, "
        "Thu 08:00-09:30 & 15:00-18:00, Fri 08:00-09:30 & 15:00-18:00"
    )  # a lunch break, listed out of order in the answer
    assert by_id["592976"] == PickupPointRecord(
        carrier_point_id="592976",
        name="MY WAY DROTTNINGSHOLMSVÄGEN",
        street_address="Drottningholmsvägen 53",
        postal_code="11219",
        city="STOCKHOLM",
        latitude=59.331627,
        longitude=18.023262,
        opening_hours=by_id["592976"].opening_hours,
    )
    # PostNord's "unknown position": kept, so that the sync reports the row instead of losing it.
    tobak = by_id["592977"]
    assert (tobak.name, tobak.latitude, tobak.longitude) == ("41:AN CITY TOBAK", 0.0, 0.0)
    assert isinstance(tobak.latitude, float)
    assert by_id["377660"].city == "SMÅLANDSSTENAR" and by_id["114783"].postal_code == "31451"
    assert all(r.name and r.street_address and r.postal_code and r.opening_hours for r in records)


async def test_one_answer_without_paging_and_a_top_level_list(registry: FakeRegistry, samples: Path) -> None:
    registry.answers["/envelope"] = (200, ADDRESS.read_bytes())
    points = json.loads(ADDRESS.read_bytes())["servicePointInformationResponse"]["servicePoints"]
    registry.answers["/list"] = (200, json.dumps(points).encode())
    config = {
        "carriers": {
            "postnord": {"url": f"{registry.base}/envelope"},
            "bare": {"url": f"{registry.base}/list"},
        }
    }

    enveloped = await fetch("postnord", config)
    bare = await fetch("bare", config)
    assert len(enveloped) == 10 and enveloped == bare
    assert enveloped[0] == GISLAVED
    assert len(registry.requests) == 2  # one request each

    # PostNord's daily file: gzip without Content-Encoding, filtered by `where`.
    registry.answers["/file/ALL-SE.json.gz"] = (200, gzip.compress(ADDRESS.read_bytes()))
    dump = {"url": f"{registry.base}/file/ALL-SE.json.gz", "where": {"visitingAddress.city": "GISLAVED"}}
    gislaved = await fetch("postnord", {"carriers": {"postnord": dump}})
    assert [r.carrier_point_id for r in gislaved] == ["376062", "376031"]


async def test_lockers_missing_values_and_junk_items(registry: FakeRegistry, samples: Path) -> None:
    point = json.loads(ADDRESS.read_bytes())["servicePointInformationResponse"]["servicePoints"][0]
    box = {**point, "servicePointId": 900001, "type": {"groupTypeId": 2, "groupTypeName": "Service box"}}
    bare = {"servicePointId": "900002", "coordinates": [{"northing": "57,30", "easting": "x"}]}
    body = {"servicePointInformationResponse": {"servicePoints": [box, bare, "junk", 42, None]}}
    registry.answers["/mixed"] = (200, json.dumps(body).encode())

    box_point, bare_point = await fetch(
        "postnord", {"carriers": {"postnord": {"url": f"{registry.base}/mixed"}}}
    )
    assert (box_point.carrier_point_id, box_point.kind) == ("900001", "locker")  # a number id becomes text
    assert box_point.street_address == "Stinsgatan 2"
    # Not dropped: every gap is None (the required name is ""), for the sync to report as a row error.
    assert bare_point == PickupPointRecord(carrier_point_id="900002", name="", latitude=57.3)


async def test_budbee_lockers_by_a_custom_mapping(registry: FakeRegistry, samples: Path) -> None:
    registry.answers["/boxes"] = (200, BUDBEE.read_bytes())
    config = {
        "carriers": {
            "budbee": {
                "url": f"{registry.base}/boxes",
                "headers": {"Accept": "application/vnd.budbee.boxes-v1+json"},
                "items": "lockers",
                "mapping": {
                    "carrier_point_id": "id",
                    "kind": {"value": "locker"},
                    "street_address": "address.street",
                    "postal_code": "address.postalCode",
                    "city": "address.city",
                    "latitude": "address.coordinate.latitude",
                    "longitude": "address.coordinate.longitude",
                    "opening_hours": {"path": "openingHours.periods", "format": "hours"},
                },
            }
        }
    }
    assert await fetch("budbee", config) == [
        PickupPointRecord(
            carrier_point_id="BOX0001",
            name="Budbee Kontorsbox",
            kind="locker",
            street_address="Alströmergatan 39",
            postal_code="11247",
            city="Stockholm",
            latitude=59.336125,
            longitude=18.028590,
            opening_hours="Mon 08:00-19:00, Tue 08:00-19:00, Wed 08:00-19:00, Thu 08:00-19:00, "
            "Fri from 00:00, Sat 10:00-15:00",
        )
    ]
    assert registry.requests[0][2]["Accept"] == "application/vnd.budbee.boxes-v1+json"

    config["carriers"]["budbee"]["mapping"]["opening_hours"] = {
        "path": "openingHours.weekdayText",
        "format": "join",
        "separator": ", ",
    }
    (locker,) = await fetch("budbee", config)
    assert locker.opening_hours is not None
    assert locker.opening_hours.startswith("Måndag: 08 – 19, Tisdag: 08 – 19")


async def test_an_error_status_or_a_broken_answer_raises(registry: FakeRegistry) -> None:
    registry.answers["/broken"] = (500, b'{"message": "internal detail that must not leak"}')
    registry.answers["/html"] = (200, b"<html>maintenance</html>")
    registry.answers["/envelope-only"] = (200, b'{"compositeFault": {"faults": []}}')

    for path, message in [
        ("/broken", "postnord: the registry answered HTTP 500"),
        ("/missing", "postnord: the registry answered HTTP 404"),
        ("/html", "postnord: the registry's answer is not JSON"),
        ("/envelope-only", "postnord: the registry's answer has no list at"),
    ]:
        config = {"carriers": {"postnord": {"url": f"{registry.base}{path}", "params": {"apikey": API_KEY}}}}
        with pytest.raises(tmn_registry_http.RegistryError) as raised:
            await fetch("postnord", config)
        assert str(raised.value).startswith(message)
        assert API_KEY not in str(raised.value) and "leak" not in str(raised.value)


async def test_paging_that_never_ends_is_refused(registry: FakeRegistry, samples: Path) -> None:
    registry.answers["/ignores-paging"] = (200, ADDRESS.read_bytes())
    with pytest.raises(tmn_registry_http.RegistryError, match="repeats"):
        await fetch("postnord", postnord(registry, url=f"{registry.base}/ignores-paging"))

    registry.pages = [ADDRESS.read_bytes(), COORDINATES.read_bytes()]
    limited = postnord(registry, paging={"param": "page", "max_pages": 2})
    with pytest.raises(tmn_registry_http.RegistryError, match="after 2 pages"):
        await fetch("postnord", limited)  # an incomplete list must not become a snapshot
    exactly = postnord(registry, paging={"param": "page", "max_pages": 2, "stop_when_empty": False})
    assert len(await fetch("postnord", exactly)) == 15
    by_size = postnord(registry, paging={"param": "page", "page_size": 10})
    assert len(await fetch("postnord", by_size)) == 15  # page 2 has 5 < 10: no third request
    assert [q["page"] for _, q, _ in registry.requests[-2:]] == [["1"], ["2"]]


async def test_carriers_not_configured_are_not_served(tmp_path: Path) -> None:
    http_config = {"carriers": {"postnord": {"url": "http://127.0.0.1:9/"}}}
    assert await tmn_registry_http.tmn_fetch_pickup_points(carrier="budbee", config=http_config) is None
    assert await tmn_registry_http.tmn_fetch_pickup_points(carrier="postnord", config={}) is None
    csv_config = {"carriers": {"instabox": {"path": str(tmp_path / "instabox.csv")}}}
    assert await tmn_registry_csv.tmn_fetch_pickup_points(carrier="postnord", config=csv_config) is None
    assert await tmn_registry_csv.tmn_fetch_pickup_points(carrier="instabox", config={}) is None


def _host(config: dict[str, Any], timeout: float) -> PluginHost:
    """A host with only `registry_http`: from its entry point once pyproject declares it and the
    project is reinstalled; until then the module is registered under that name by hand."""
    settings = Settings(
        plugins=(tmn_registry_http.PLUGIN,),
        plugin_config=json.dumps({tmn_registry_http.PLUGIN: config}),
        plugin_timeout_seconds=timeout,
    )
    declared = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="tmn")}
    if tmn_registry_http.PLUGIN in declared:
        assert declared[tmn_registry_http.PLUGIN] == "tmn_registry_http"
        return PluginHost(settings)
    return PluginHost(settings, extra=[(tmn_registry_http.PLUGIN, tmn_registry_http)])


async def test_through_the_plugin_host_with_its_timeout(registry: FakeRegistry, samples: Path) -> None:
    registry.pages = [ADDRESS.read_bytes(), COORDINATES.read_bytes()]
    host = _host(postnord(registry), timeout=0.5)
    assert host.implementers("tmn_fetch_pickup_points") == ["registry_http"]
    answers, failures = await host.call_all("tmn_fetch_pickup_points", carrier="postnord")
    assert failures == {} and len(answers["registry_http"]) == 15
    answers, failures = await host.call_all("tmn_fetch_pickup_points", carrier="dhl")
    assert answers == {"registry_http": None} and failures == {}

    registry.delay = 3.0  # longer than the host's 0.5 s (the plugin's own timeout is 5 s)
    started = time.monotonic()
    with pytest.raises(PluginFailure) as failed:
        await host.call("tmn_fetch_pickup_points", "registry_http", carrier="postnord")
    assert time.monotonic() - started < 1.5
    assert (failed.value.plugin, failed.value.reason) == ("registry_http", "timed out")
    (status,) = host.status()
    assert (status.name, status.health, status.timeouts, status.calls) == ("registry_http", "degraded", 1, 3)


async def test_csv_with_bom_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "instabox.csv"
    path.write_text(
        "Box-ID;name;kind;street_address;postal_code;city;lat;longitude;opening_hours;comment\n"
        "IB-1;Instabox Coop Älvsbyn;locker;Storgatan 8;942 31;ÄLVSBYN;65,6756;21,0034;Mon-Sun 07-22;x\n"
        "\n"
        'IB-2;"Instabox; Centrum";;Köpmangatan 1;97231;LULEÅ;;;;\n'
        "IB-3;;locker;;;;north;22.15\n",
        encoding="utf-8-sig",
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    config = {
        "carriers": {
            "instabox": {
                "path": str(path),
                "delimiter": ";",
                "columns": {"carrier_point_id": "Box-ID", "latitude": "lat"},
            }
        }
    }
    records = await tmn_registry_csv.tmn_fetch_pickup_points(carrier="instabox", config=config)
    assert records == [
        PickupPointRecord(
            carrier_point_id="IB-1",
            name="Instabox Coop Älvsbyn",
            kind="locker",
            street_address="Storgatan 8",
            postal_code="942 31",
            city="ÄLVSBYN",
            latitude=65.6756,
            longitude=21.0034,
            opening_hours="Mon-Sun 07-22",
        ),
        PickupPointRecord(
            carrier_point_id="IB-2",
            name="Instabox; Centrum",
            street_address="Köpmangatan 1",
            postal_code="97231",
            city="LULEÅ",
        ),
        # Kept with its gaps (a short row, a coordinate that is no number): the sync reports it.
        PickupPointRecord(carrier_point_id="IB-3", name="", kind="locker", longitude=22.15),
    ]


async def test_csv_plain_utf8_with_an_id_column_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "early-bird.csv"
    path.write_text(
        "id,name,street_address,postal_code,city,latitude,longitude\nEB-7,Ombud,Väg 1,11234,X,59.3,18.0\n"
    )
    records = await tmn_registry_csv.tmn_fetch_pickup_points(
        carrier="earlybird", config={"carriers": {"earlybird": {"path": str(path)}}}
    )
    assert records == [
        PickupPointRecord(
            carrier_point_id="EB-7",
            name="Ombud",
            street_address="Väg 1",
            postal_code="11234",
            city="X",
            latitude=59.3,
            longitude=18.0,
        )
    ]

    path.write_text("identifier,title\nA,B\n")
    with pytest.raises(ValueError, match="no column for carrier_point_id, name"):
        await tmn_registry_csv.tmn_fetch_pickup_points(
            carrier="earlybird", config={"carriers": {"earlybird": {"path": str(path)}}}
        )

    gone = tmp_path / "nowhere" / "instabox.csv"
    with pytest.raises(FileNotFoundError) as raised:
        await tmn_registry_csv.tmn_fetch_pickup_points(
            carrier="instabox", config={"carriers": {"instabox": {"path": str(gone)}}}
        )
    assert str(gone) in str(raised.value)
