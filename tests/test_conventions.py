"""API conventions that hold everywhere: problems, pagination, ETags, idempotency, transactions."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from litestar import post

from service.deps import RequestContext
from service.organizations.models import OrganizationKind
from service.organizations.schemas import OrganizationCreate
from service.organizations.service import OrganizationService
from tests.helpers import create, error_fields, pickup_point, problem

# A minimal valid body per creating endpoint (participants need no organization as national admin).
CREATE_BODIES: dict[str, dict[str, Any]] = {
    "/v1/organizations": {"kind": "customs", "name": "Tullverket"},
    "/v1/participants": {"name": "Anna Berg", "email": "anna.berg@alvsbyn.example"},
    "/v1/networks": {"name": "Nationella kontakter", "kind": "national_contacts"},
}


@pytest.mark.parametrize("path", list(CREATE_BODIES))
async def test_unknown_fields_are_rejected_by_name(client, path: str) -> None:
    body = CREATE_BODIES[path] | {"colour": "blue"}
    assert error_fields(await client.post(path, json=body)) == {"colour"}


@pytest.mark.parametrize("path", list(CREATE_BODIES))
async def test_broken_json_is_a_400_problem(client, path: str) -> None:
    response = await client.post(path, content=b'{"name": "x",', headers={"content-type": "application/json"})
    body = problem(response, 400)
    assert body["type"] == "/problems/malformed-request"
    assert "JSON" in body["detail"]


@pytest.mark.parametrize("path", list(CREATE_BODIES))
async def test_empty_body_is_a_400_problem(client, path: str) -> None:
    response = await client.post(path, content=b"", headers={"content-type": "application/json"})
    problem(response, 400)


@pytest.mark.parametrize("path", list(CREATE_BODIES))
async def test_wrong_types_and_overlong_strings_name_the_field(client, path: str) -> None:
    assert error_fields(await client.post(path, json=CREATE_BODIES[path] | {"name": 42})) == {"name"}
    assert error_fields(await client.post(path, json=CREATE_BODIES[path] | {"name": "x" * 201})) == {"name"}
    assert error_fields(await client.post(path, json=CREATE_BODIES[path] | {"name": ""})) == {"name"}


async def test_missing_required_field_is_named(client) -> None:
    assert error_fields(await client.post("/v1/organizations", json={"name": "x"})) == {"kind"}


async def test_non_object_body(client) -> None:
    body = problem(await client.post("/v1/organizations", json=[1, 2]), 422)
    assert body["errors"][0]["pointer"] == "#"


@pytest.mark.parametrize("limit", ["0", "-1", "201", "100000", "abc", "1.5"])
@pytest.mark.parametrize(
    "path", ["/v1/organizations", "/v1/participants", "/v1/networks", "/v1/municipalities"]
)
async def test_bad_limits_are_rejected(client, path: str, limit: str) -> None:
    response = await client.get(path, params={"limit": limit})
    body = problem(response, 422)
    assert body["errors"][0]["field"] == "limit"
    assert body["errors"][0]["source"] == "query"


async def test_limit_bounds_are_inclusive(client) -> None:
    assert len((await client.get("/v1/municipalities", params={"limit": 1})).json()["items"]) == 1
    assert len((await client.get("/v1/municipalities", params={"limit": 200})).json()["items"]) == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps(["municipality.code", ["2560"]]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["organization.name", ["a"]]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["organization.name", ["a", "not-a-uuid"]]).encode()).decode(),
    ],
)
async def test_foreign_or_forged_cursors_are_rejected(client, cursor: str) -> None:
    assert error_fields(await client.get("/v1/organizations", params={"cursor": cursor})) == {"cursor"}


async def test_cursor_pagination_is_stable_and_complete(client) -> None:
    names = [f"Ombud {i:02d}" for i in range(7)]
    for name in reversed(names):
        await create(client, "/v1/organizations", pickup_point(name))
    seen: list[str] = []
    params: dict[str, Any] = {"kind": "pickup_point", "limit": 3}
    first = await client.get("/v1/organizations", params=params)
    page = first.json()
    assert page["limit"] == 3 and len(page["items"]) == 3
    link = first.headers["link"]
    assert link.startswith("<http") and link.endswith('>; rel="next"')
    assert "kind=pickup_point" in link and "limit=3" in link and "cursor=" in link
    seen += [o["name"] for o in page["items"]]
    # A row created between pages, sorting before the cursor, neither repeats nor shifts the rest.
    await create(client, "/v1/organizations", pickup_point("Ombud 00a"))
    while page["next_cursor"]:
        page = (await client.get("/v1/organizations", params=params | {"cursor": page["next_cursor"]})).json()
        seen += [o["name"] for o in page["items"]]
    assert seen == names


async def test_created_resources_have_location_and_etag(client) -> None:
    response = await client.post("/v1/organizations", json=CREATE_BODIES["/v1/organizations"])
    assert response.status_code == 201
    location = response.headers["location"]
    assert location.startswith("http") and location.endswith(f"/v1/organizations/{response.json()['id']}")
    again = await client.get(location)
    assert again.status_code == 200
    assert again.json() == response.json()
    assert again.headers["etag"] == response.headers["etag"]


async def test_if_match_guards_against_lost_updates(client) -> None:
    created = await client.post("/v1/organizations", json=CREATE_BODIES["/v1/organizations"])
    path, etag = f"/v1/organizations/{created.json()['id']}", created.headers["etag"]

    first = await client.patch(path, json={"name": "Tullverket Luleå"}, headers={"If-Match": etag})
    assert first.status_code == 200
    assert first.headers["etag"] != etag

    stale = await client.patch(path, json={"name": "Tullverket Kiruna"}, headers={"If-Match": etag})
    body = problem(stale, 412)
    assert body["type"] == "/problems/precondition-failed"
    assert stale.headers["etag"] == first.headers["etag"]
    assert (await client.get(path)).json()["name"] == "Tullverket Luleå"

    star = await client.patch(path, json={"name": "Tullverket"}, headers={"If-Match": "*"})
    assert star.status_code == 200
    problem(await client.post(f"{path}/archive", headers={"If-Match": etag}), 412)


async def test_if_none_match_answers_304(client) -> None:
    created = await client.post("/v1/organizations", json=CREATE_BODIES["/v1/organizations"])
    path, etag = f"/v1/organizations/{created.json()['id']}", created.headers["etag"]
    cached = await client.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200


@pytest.mark.parametrize("path", list(CREATE_BODIES))
async def test_idempotency_key_replays_the_first_answer(client, path: str) -> None:
    headers = {"Idempotency-Key": "create-once-7f3a"}
    first = await client.post(path, json=CREATE_BODIES[path], headers=headers)
    assert first.status_code == 201
    assert first.headers["idempotent-replayed"] == "false"
    replay = await client.post(path, json=CREATE_BODIES[path], headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.headers["location"] == first.headers["location"]
    assert replay.headers["etag"] == first.headers["etag"]
    listing = (await client.get(path, params={"q": CREATE_BODIES[path]["name"]})).json()["items"]
    assert [item["id"] for item in listing] == [first.json()["id"]]

    other = await client.post(path, json=CREATE_BODIES[path] | {"name": "Something else"}, headers=headers)
    body = problem(other, 422)
    assert body["type"] == "/problems/idempotency-key-reused"
    assert body["errors"][0] == {
        "field": "Idempotency-Key",
        "pointer": "Idempotency-Key",
        "source": "header",
        "detail": "already used with another body or path",
    }


async def test_idempotency_key_is_validated(client) -> None:
    response = await client.post(
        "/v1/organizations", json=CREATE_BODIES["/v1/organizations"], headers={"Idempotency-Key": "k" * 256}
    )
    assert error_fields(response) == {"Idempotency-Key"}


async def test_a_failed_request_leaves_nothing_half_written(client) -> None:
    @post("/test/write-then-fail")
    async def write_then_fail(ctx: RequestContext) -> None:
        await OrganizationService(ctx).create(
            OrganizationCreate(kind=OrganizationKind.CUSTOMS, name="Halfway AB")
        )
        raise RuntimeError("fails after the insert was flushed")

    client.app.register(write_then_fail)
    body = problem(await client.post("/test/write-then-fail"), 500)
    assert body["type"] == "/problems/internal-error"
    assert "fails after" not in json.dumps(body)  # internals are not leaked
    assert (await client.get("/v1/organizations", params={"q": "Halfway"})).json()["items"] == []


async def test_unknown_routes_and_methods_are_problems(client) -> None:
    assert problem(await client.get("/v1/nothing-here"), 404)["type"] == "/problems/not-found"
    assert problem(await client.delete("/v1/counties"), 405)["type"] == "/problems/method-not-allowed"
    problem(await client.get("/v1/organizations/not-a-uuid"), 404)


async def test_request_id_is_echoed_or_created(client) -> None:
    mine = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32


async def test_problem_types_are_documented(client) -> None:
    body = (await client.get("/problems/precondition-failed")).json()
    assert body["status"] == 412 and "If-Match" in body["description"]
    problem(await client.get("/problems/no-such-problem"), 404)


async def test_merge_patch_media_type_is_accepted(client) -> None:
    created = await create(client, "/v1/organizations", CREATE_BODIES["/v1/organizations"])
    response = await client.patch(
        f"/v1/organizations/{created['id']}",
        content=json.dumps({"phone": "+46 920 123 45"}),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "+4692012345"


async def test_request_log_is_one_json_line_without_personal_data(client, tmn_logs) -> None:
    await client.post("/v1/participants", json={"name": "Hemlig Person", "email": "hemlig@person.example"})
    response = await client.get("/v1/participants", params={"email": "hemlig@person.example"})
    assert response.status_code == 200
    requests = [json.loads(line) for line in tmn_logs if '"tmn.request"' in line]
    listing = next(r for r in requests if r["method"] == "GET")
    assert listing["path"] == "/v1/participants" and listing["status"] == 200
    assert listing["request_id"] == response.headers["x-request-id"]
    assert listing["principal_id"] == "key:testadmn"
    assert not [line for line in tmn_logs if "hemlig" in line.lower()]


@pytest.mark.parametrize("path", ["/v1/organizations", "/v1/participants", "/v1/networks"])
@pytest.mark.parametrize(("field", "value"), [("county", "99"), ("municipality", "9999")])
async def test_unknown_codes_in_filters_are_named(client, path: str, field: str, value: str) -> None:
    body = problem(await client.get(path, params={field: value}), 422)
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["source"] == "query"
