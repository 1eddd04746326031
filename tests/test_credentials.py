"""Certifications as Open Badges 3.0 VC-JWTs: real Ed25519 keys, real signatures, real GZIP lists.

The checks that matter to an outside verifier are done independently here: the JWS header is
decoded by hand, the RFC 7638 thumbprint is recomputed from the JWK, and the status list is
gunzipped without the module's help.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from service.certifications.credentials import (
    ACHIEVEMENT_NAME,
    OB_CONTEXT,
    VC_CONTEXT,
    CredentialError,
    CredentialSubject,
    IssuerKey,
    issue_credential,
    jwks,
    status_bit,
    status_list_credential,
    verify_credential,
)
from service.settings import SettingsError

ISSUER = "https://tmn.example/v1/issuer"
LISTS = "https://tmn.example/v1/status-lists/1"
CREDENTIAL_ID = "urn:uuid:0193a8f2-7c4e-7b1a-9d3e-5f6a7b8c9d0e"
VALID_FROM = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
VALID_UNTIL = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SUBJECT = CredentialSubject(
    organization_name="Tobakshandeln på hörnet AB",
    municipality_code="0180",
    municipality_name="Stockholm",
    certification_number="TMN-0180-0042",
    verify_url="https://tmn.example/v/TMN-0180-0042",
)


def b64url_json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def issue(key: IssuerKey, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "issuer_id": ISSUER,
        "issuer_name": "Tillsammans mot nätdroger",
        "credential_id": CREDENTIAL_ID,
        "subject": SUBJECT,
        "valid_from": VALID_FROM,
        "valid_until": VALID_UNTIL,
        "issued_at": VALID_FROM,
        "status_list_url": LISTS,
        "status_index": 4711,
    }
    arguments.update(overrides)
    return issue_credential(key, **arguments)


@pytest.fixture(scope="module")
def key() -> IssuerKey:
    return IssuerKey.generate()


def test_issued_credential_verifies_and_follows_open_badges(key: IssuerKey) -> None:
    token = issue(key)
    payload = verify_credential(token, jwks([key]), now=VALID_FROM + timedelta(days=30))

    assert payload["@context"] == [VC_CONTEXT, OB_CONTEXT]
    assert payload["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert payload["id"] == CREDENTIAL_ID
    assert payload["issuer"] == {"id": ISSUER, "type": ["Profile"], "name": "Tillsammans mot nätdroger"}
    assert payload["validFrom"] == "2025-03-01T10:00:00Z"
    assert payload["validUntil"] == "2026-03-01T10:00:00Z"
    assert payload["name"]

    subject = payload["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["name"] == "Tobakshandeln på hörnet AB"
    assert subject["identifier"][0]["identityHash"] == "Tobakshandeln på hörnet AB"
    assert subject["licenseNumber"] == "TMN-0180-0042"
    assert subject["source"]["type"] == ["Profile"]
    assert subject["source"]["name"] == "Stockholm"
    assert subject["source"]["otherIdentifier"][0]["identifier"] == "0180"
    achievement = subject["achievement"]
    assert achievement["type"] == ["Achievement"]
    assert achievement["name"] == ACHIEVEMENT_NAME == "Certifierad: Tillsammans mot nätdroger"
    assert achievement["id"] and achievement["description"]
    narrative = achievement["criteria"]["narrative"]
    assert "police" in narrative and "customs" in narrative and "mailing list" in narrative
    assert payload["evidence"][0]["id"] == "https://tmn.example/v/TMN-0180-0042"

    revocation, suspension = payload["credentialStatus"]
    assert revocation["type"] == suspension["type"] == "BitstringStatusListEntry"
    assert revocation["statusPurpose"] == "revocation"
    assert suspension["statusPurpose"] == "suspension"
    assert revocation["statusListIndex"] == suspension["statusListIndex"] == "4711"
    assert revocation["statusListCredential"] == f"{LISTS}/revocation"
    assert suspension["statusListCredential"] == f"{LISTS}/suspension"

    assert payload["iss"] == ISSUER
    assert payload["jti"] == CREDENTIAL_ID
    assert payload["nbf"] == int(VALID_FROM.timestamp())
    assert payload["exp"] == int(VALID_UNTIL.timestamp())
    assert payload["iat"] == int(VALID_FROM.timestamp())
    assert "sub" not in payload


def test_header_is_vc_jwt_eddsa_with_the_thumbprint_as_kid(key: IssuerKey) -> None:
    header = b64url_json(issue(key).split(".")[0])
    assert header["typ"] == "vc+jwt"
    assert header["alg"] == "EdDSA"

    jwk = key.public_jwk()
    members = json.dumps({name: jwk[name] for name in ("crv", "kty", "x")}, separators=(",", ":"))
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()
    assert members.startswith('{"crv":"Ed25519","kty":"OKP","x":"')
    assert header["kid"] == key.kid == jwk["kid"] == thumbprint


def test_public_jwk_has_no_private_part(key: IssuerKey) -> None:
    jwk = key.public_jwk()
    assert "d" not in jwk
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": jwk["x"],
        "kid": key.kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    assert all("d" not in published for published in jwks([key, IssuerKey.generate()])["keys"])
    # And the published x really is the signing key's public half.
    assert jwt.decode(issue(key), jwt.PyJWK(jwk), algorithms=["EdDSA"], options={"verify_exp": False})


def test_tampered_payload_fails(key: IssuerKey) -> None:
    header, payload, signature = issue(key).split(".")
    claims = b64url_json(payload)
    claims["credentialSubject"]["licenseNumber"] = "TMN-0180-9999"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(CredentialError):
        verify_credential(f"{header}.{forged}.{signature}", jwks([key]), now=VALID_FROM)


def test_another_key_fails(key: IssuerKey) -> None:
    token = issue(key)
    with pytest.raises(CredentialError, match="unknown key"):
        verify_credential(token, jwks([IssuerKey.generate()]), now=VALID_FROM)
    # Another key published under our kid: the signature does not hold.
    impostor = IssuerKey.generate().public_jwk() | {"kid": key.kid}
    with pytest.raises(CredentialError):
        verify_credential(token, {"keys": [impostor]}, now=VALID_FROM)


def test_validity_is_checked_against_now(key: IssuerKey) -> None:
    token = issue(key)
    keys = jwks([key])
    assert verify_credential(token, keys, now=VALID_UNTIL - timedelta(seconds=1))
    with pytest.raises(CredentialError, match="expired"):
        verify_credential(token, keys, now=VALID_UNTIL + timedelta(seconds=1))
    with pytest.raises(CredentialError, match="not yet valid"):
        verify_credential(token, keys, now=VALID_FROM - timedelta(seconds=1))


def test_wrong_typ_fails(key: IssuerKey) -> None:
    plain_jwt = jwt.encode(
        {"iss": ISSUER}, key.to_pem(), algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"}
    )
    with pytest.raises(CredentialError, match="vc\\+jwt"):
        verify_credential(plain_jwt, jwks([key]), now=VALID_FROM)


def test_status_list_reads_back_its_bits(key: IssuerKey) -> None:
    list_url = f"{LISTS}/revocation"
    token = status_list_credential(
        key,
        issuer_id=ISSUER,
        list_url=list_url,
        purpose="revocation",
        set_indexes={3, 131071},
        issued_at=VALID_FROM,
    )
    assert b64url_json(token.split(".")[0])["typ"] == "vc+jwt"
    payload = verify_credential(token, jwks([key]), now=VALID_FROM + timedelta(minutes=5))
    assert payload["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert payload["id"] == list_url
    subject = payload["credentialSubject"]
    assert subject["id"] == f"{list_url}#list"
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == "revocation"

    encoded = subject["encodedList"]
    assert encoded.startswith("u") and "=" not in encoded
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(bits) == 16384
    assert bits[0] == 0b0001_0000  # bit 3: the fourth most significant bit of byte 0
    assert bits[-1] == 0b0000_0001

    assert status_bit(payload, 3) is True
    assert status_bit(payload, 131071) is True
    for index in (0, 2, 4, 7, 8, 4711, 131070):
        assert status_bit(payload, index) is False
    with pytest.raises(CredentialError):
        status_bit(payload, 131072)


def test_status_list_refuses_short_lists_and_stray_indexes(key: IssuerKey) -> None:
    common: dict[str, Any] = {
        "issuer_id": ISSUER,
        "list_url": LISTS,
        "purpose": "suspension",
        "issued_at": VALID_FROM,
    }
    with pytest.raises(ValueError, match="at least"):
        status_list_credential(key, set_indexes=(), size=1024, **common)
    with pytest.raises(ValueError, match="outside"):
        status_list_credential(key, set_indexes={131072}, **common)


def test_load_or_create_writes_once_and_reuses(tmp_path: Path) -> None:
    first = IssuerKey.load_or_create(key_file="", data_dir=str(tmp_path / "var"), embedded=True)
    path = tmp_path / "var" / "credential-key.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    written = path.read_bytes()
    assert written.startswith(b"-----BEGIN PRIVATE KEY-----")

    second = IssuerKey.load_or_create(key_file="", data_dir=str(tmp_path / "var"), embedded=True)
    assert second.kid == first.kid
    assert path.read_bytes() == written

    # A configured key file wins, on either database.
    configured = tmp_path / "configured.pem"
    configured.write_bytes(IssuerKey.generate().to_pem())
    from_file = IssuerKey.load_or_create(
        key_file=str(configured), data_dir=str(tmp_path / "var"), embedded=False
    )
    assert from_file.kid == IssuerKey.from_pem(configured.read_bytes()).kid != first.kid


def test_postgresql_without_key_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TMN_CREDENTIAL_KEY_FILE"):
        IssuerKey.load_or_create(key_file="", data_dir=str(tmp_path), embedded=False)
    assert not (tmp_path / "credential-key.pem").exists()
    with pytest.raises(SettingsError, match="TMN_CREDENTIAL_KEY_FILE"):
        IssuerKey.load_or_create(
            key_file=str(tmp_path / "missing.pem"), data_dir=str(tmp_path), embedded=False
        )


def test_a_server_without_its_key_says_so(tmp_path) -> None:
    """On PostgreSQL the key must be configured: a clear 503 problem, not an internal error."""
    from service.certifications.service import issuer_key
    from service.meetings.mail import Outside
    from service.problems import Problem
    from service.settings import Settings

    settings = Settings(database_url="postgresql+asyncpg://tmn@db/tmn", data_dir=str(tmp_path))
    with pytest.raises(Problem) as refused:
        issuer_key(Outside(settings=settings))
    assert refused.value.status_code == 503 and "TMN_CREDENTIAL_KEY_FILE" in str(refused.value.detail)
