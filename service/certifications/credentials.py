"""Certifications as verifiable credentials: Open Badges 3.0 on the W3C VC Data Model 2.0.

A certification is issued as an `OpenBadgeCredential` secured as a VC-JWT (VC-JOSE-COSE: the JWT
payload *is* the credential, header `typ: vc+jwt`), signed with the service's Ed25519 key. Anyone
can check it offline against the published JWKS, and can check whether it has since been revoked
or suspended through two W3C Bitstring Status Lists, themselves signed credentials.

Where things go in the Open Badges data model, and why:
- the certified organization is the `AchievementSubject`. It has no IRI of its own, and OB 3.0
  requires either `id` or an `identifier`, so its name is an `IdentityObject` (identityType
  "name", not hashed: it is an organization, not a person) and also its `name`;
- the certification number is the subject's `licenseNumber` (OB: "the license number that was
  issued with this credential"), the closest defined term, so no private vocabulary is needed;
- the municipality whose collaboration meeting certified the organization is the subject's
  `source` (OB: "the organization that assessed the achievement on behalf of the issuer"), a
  `Profile` with its four-digit municipality code as an `otherIdentifier`;
- the sticker's verification page is `evidence`, a page presenting the certification's current
  standing.
Every term used is defined by the two contexts, so the document stays valid JSON-LD.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import jwt
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.settings import SettingsError

VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT: Final = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
JWT_TYPE: Final = "vc+jwt"
ALGORITHM: Final = "EdDSA"
# The Bitstring Status List spec's minimum: a list this long hides which credential is checked.
MIN_STATUS_LIST_SIZE: Final = 131072
# A decompressed list larger than this is refused rather than inflated (a gzip bomb guard).
MAX_STATUS_LIST_BYTES: Final = 16 * 1024 * 1024
KEY_FILE_NAME: Final = "credential-key.pem"

ACHIEVEMENT_NAME: Final = "Certifierad: Tillsammans mot nätdroger"
ACHIEVEMENT_DESCRIPTION: Final = (
    "Verksamheten är certifierad enligt metoden Tillsammans mot nätdroger: den samverkar med "
    "polisen, tullen och kommunen mot försäljning av narkotika och narkotikaklassade preparat "
    "via nätet.\n\n"
    "The organization is certified under the Swedish method Tillsammans mot nätdroger "
    "(Together against online drugs): it works with the police, customs and the municipality "
    "against the sale of drugs online."
)
CRITERIA_NARRATIVE: Final = (
    "Verksamheten har deltagit i ett samverkansmöte med lokala polisen, tullen och kommunen, och "
    "finns med på det lokala nätverkets sändlista. Certifieringen förnyas vid uppföljningsmöte.\n\n"
    "The organization attended a collaboration meeting with local police, customs and the "
    "municipality, and is in the local network's mailing list. The certification is renewed at "
    "a follow-up meeting."
)

StatusPurpose = Literal["revocation", "suspension"]


class CredentialError(Exception):
    """The credential is forged, malformed, signed by an unknown key, or outside its validity."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    # validate=True: stray characters are an error, not silently dropped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


class IssuerKey:
    """An Ed25519 signing key and its public JWK."""

    __slots__ = ("_private", "kid", "x")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.x: str = _b64url(raw)
        # RFC 7638: SHA-256 of the required members, in lexicographic order, without whitespace.
        members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": self.x}, separators=(",", ":"))
        self.kid: str = _b64url(hashlib.sha256(members.encode("ascii")).digest())

    @classmethod
    def generate(cls) -> IssuerKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> IssuerKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SettingsError("the credential key is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SettingsError("the credential key must be an Ed25519 key")
        return cls(key)

    @classmethod
    def load_or_create(cls, *, key_file: str, data_dir: str, embedded: bool) -> IssuerKey:
        if key_file:
            try:
                return cls.from_pem(Path(key_file).read_bytes())
            except OSError as exc:
                raise SettingsError(f"TMN_CREDENTIAL_KEY_FILE cannot be read: {key_file}") from exc
        if not embedded:
            # Several servers share a database in production, so they must share the key too:
            # a key generated per machine would make each other's credentials unverifiable.
            raise SettingsError(
                "TMN_CREDENTIAL_KEY_FILE is required with PostgreSQL (an Ed25519 PEM key that signs "
                "certifications); make one with: openssl genpkey -algorithm ed25519"
            )
        # The embedded default: one generated key kept beside the database, readable by us only.
        path = Path(data_dir) / KEY_FILE_NAME
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = cls.generate()
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(key.to_pem())
                return key
        return cls.from_pem(path.read_bytes())

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_jwk(self) -> dict[str, str]:
        # Built member by member, so the private part ("d") can never slip in.
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(
            payload, self._private, algorithm=ALGORITHM, headers={"typ": JWT_TYPE, "kid": self.kid}
        )

    def __repr__(self) -> str:
        return f"IssuerKey(kid={self.kid!r})"


def jwks(keys: Sequence[IssuerKey]) -> dict[str, Any]:
    """The public key set to publish (e.g. at /.well-known/jwks.json); older keys stay listed
    after a rotation so the credentials they signed still verify."""
    seen: set[str] = set()
    listed: list[dict[str, str]] = []
    for key in keys:
        if key.kid not in seen:
            seen.add(key.kid)
            listed.append(key.public_jwk())
    return {"keys": listed}


class CredentialSubject(msgspec.Struct, frozen=True, kw_only=True):
    organization_name: str
    municipality_code: str  # four digits, as SCB numbers Swedish municipalities
    municipality_name: str
    certification_number: str
    verify_url: str  # the sticker's public verification page


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    # Whole seconds: the JWT's nbf/exp are integers and must agree with validFrom/validUntil.
    return moment.astimezone(UTC).replace(microsecond=0)


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_entry(status_list_url: str, purpose: StatusPurpose, index: int) -> dict[str, str]:
    list_credential = f"{status_list_url}/{purpose}"
    return {
        "id": f"{list_credential}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_credential,
    }


def issue_credential(
    key: IssuerKey,
    *,
    issuer_id: str,
    issuer_name: str,
    credential_id: str,
    subject: CredentialSubject,
    valid_from: datetime,
    valid_until: datetime,
    issued_at: datetime,
    status_list_url: str,
    status_index: int,
    achievement_id: str = "",
) -> str:
    """The certification as a compact JWS. `achievement_id` defaults to an IRI under issuer_id."""
    start, end, issued = (
        _utc(valid_from, "valid_from"),
        _utc(valid_until, "valid_until"),
        _utc(issued_at, "issued_at"),
    )
    if end <= start:
        raise ValueError("valid_until must be after valid_from")
    if status_index < 0:
        raise ValueError("status_index must not be negative")
    issuer_base = issuer_id.rstrip("/")
    municipality_id = uuid.uuid5(
        uuid.NAMESPACE_URL, f"{issuer_base}/municipalities/{subject.municipality_code}"
    )
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f"{ACHIEVEMENT_NAME} – {subject.organization_name}",
        "issuer": {"id": issuer_id, "type": ["Profile"], "name": issuer_name},
        "validFrom": _rfc3339(start),
        "validUntil": _rfc3339(end),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "name": subject.organization_name,
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": "name",
                    "hashed": False,
                    "identityHash": subject.organization_name,
                }
            ],
            "licenseNumber": subject.certification_number,
            "source": {
                "id": f"urn:uuid:{municipality_id}",
                "type": ["Profile"],
                "name": subject.municipality_name,
                "otherIdentifier": [
                    {
                        "type": "IdentifierEntry",
                        "identifier": subject.municipality_code,
                        "identifierType": "ext:SwedishMunicipalityCode",
                    }
                ],
            },
            "achievement": {
                "id": achievement_id or f"{issuer_base}/achievements/tillsammans-mot-natdroger",
                "type": ["Achievement"],
                "achievementType": "Certification",
                "name": ACHIEVEMENT_NAME,
                "description": ACHIEVEMENT_DESCRIPTION,
                "criteria": {"narrative": CRITERIA_NARRATIVE},
            },
        },
        "evidence": [
            {
                "id": subject.verify_url,
                "type": ["Evidence"],
                "name": "Verifiera certifieringen / Verify the certification",
                "description": "Certifieringens aktuella status. / The certification's current status.",
            }
        ],
        "credentialStatus": [
            _status_entry(status_list_url, "revocation", status_index),
            _status_entry(status_list_url, "suspension", status_index),
        ],
        # JWT registered claims, mirroring the credential for plain JWT libraries. There is no
        # `sub`: the organization has no IRI of its own.
        "iss": issuer_id,
        "jti": credential_id,
        "nbf": int(start.timestamp()),
        "exp": int(end.timestamp()),
        "iat": int(issued.timestamp()),
    }
    return key.sign(credential)


def encode_status_list(set_indexes: Iterable[int], size: int = MIN_STATUS_LIST_SIZE) -> str:
    """The `encodedList`: multibase base64url (prefix "u", no padding) of the GZIP'd bitstring."""
    if size < MIN_STATUS_LIST_SIZE or size % 8:
        raise ValueError(f"a status list has at least {MIN_STATUS_LIST_SIZE} bits, a multiple of 8")
    bits = bytearray(size // 8)
    for index in set_indexes:
        if not 0 <= index < size:
            raise ValueError(f"status index {index} is outside the list (size {size})")
        # Bit 0 is the most significant bit of the first byte.
        bits[index // 8] |= 0x80 >> (index % 8)
    # mtime=0: the same bits always give the same bytes.
    return "u" + _b64url(gzip.compress(bytes(bits), mtime=0))


def status_list_credential(
    key: IssuerKey,
    *,
    issuer_id: str,
    list_url: str,
    purpose: StatusPurpose,
    set_indexes: Iterable[int],
    issued_at: datetime,
    size: int = MIN_STATUS_LIST_SIZE,
    valid_until: datetime | None = None,
) -> str:
    """A BitstringStatusListCredential as a VC-JWT. `valid_until` bounds how long a cached copy
    may be trusted; without it the list never expires (the verifier refetches when it likes)."""
    issued = _utc(issued_at, "issued_at")
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_id,
        "validFrom": _rfc3339(issued),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encode_status_list(set_indexes, size),
        },
        "iss": issuer_id,
        "nbf": int(issued.timestamp()),
        "iat": int(issued.timestamp()),
    }
    if valid_until is not None:
        end = _utc(valid_until, "valid_until")
        if end <= issued:
            raise ValueError("valid_until must be after issued_at")
        credential["validUntil"] = _rfc3339(end)
        credential["exp"] = int(end.timestamp())
    return key.sign(credential)


def _public_key(jwks_document: dict[str, Any], kid: str) -> Ed25519PublicKey:
    keys = jwks_document.get("keys") if isinstance(jwks_document, dict) else None
    if not isinstance(keys, list):
        raise CredentialError("malformed key set")
    for jwk in keys:
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
                raise CredentialError("the key is not an Ed25519 key")
            try:
                raw = _b64url_decode(jwk["x"])
                return Ed25519PublicKey.from_public_bytes(raw)
            except (ValueError, binascii.Error) as exc:
                raise CredentialError("malformed key") from exc
    raise CredentialError("unknown key")


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise CredentialError(f"{name} is missing or not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CredentialError(f"{name} is not an RFC 3339 date-time") from exc
    if moment.tzinfo is None:
        raise CredentialError(f"{name} has no time zone")
    return moment


def verify_credential(token: str, jwks_document: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Check the signature (key by `kid`), `typ`, and validity at `now`; return the credential.

    Status is not checked here: fetch the list named in `credentialStatus`, verify it with this
    same function, and read the bit with `status_bit`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise CredentialError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise CredentialError("unsupported algorithm")
    if header.get("typ") != JWT_TYPE:
        raise CredentialError("not a vc+jwt")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise CredentialError("no key id")
    public_key = _public_key(jwks_document, kid)
    try:
        # Times are checked below against the caller's `now`, not the wall clock.
        payload: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise CredentialError("bad signature or malformed token") from exc

    context = payload.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_CONTEXT:
        raise CredentialError("not a VC Data Model 2.0 credential")
    types = payload.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise CredentialError("not a verifiable credential")
    issuer = payload.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(issuer_id, str) or ("iss" in payload and payload["iss"] != issuer_id):
        raise CredentialError("issuer mismatch")

    valid_from = _parse_time(payload.get("validFrom"), "validFrom")
    if now < valid_from:
        raise CredentialError("not yet valid")
    if "validUntil" in payload and now >= _parse_time(payload["validUntil"], "validUntil"):
        raise CredentialError("expired")
    # The JWT claims must agree (a plain JWT library would trust them).
    stamp = now.timestamp()
    if isinstance(payload.get("nbf"), int | float) and stamp < payload["nbf"]:
        raise CredentialError("not yet valid")
    if isinstance(payload.get("exp"), int | float) and stamp >= payload["exp"]:
        raise CredentialError("expired")
    return payload


def status_bit(status_list_token_payload: dict[str, Any], index: int) -> bool:
    """The bit at `index` of a (verified) status list credential: True means revoked/suspended."""
    subject = status_list_token_payload.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("type") != "BitstringStatusList":
        raise CredentialError("not a BitstringStatusList")
    if subject.get("statusSize", 1) != 1:
        raise CredentialError("only one-bit statuses are supported")
    encoded = subject.get("encodedList")
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise CredentialError("encodedList is not multibase base64url")
    try:
        compressed = _b64url_decode(encoded[1:])
        inflater = zlib.decompressobj(wbits=31)  # 31: GZIP framing
        bits = inflater.decompress(compressed, MAX_STATUS_LIST_BYTES)
    except (ValueError, binascii.Error, zlib.error) as exc:
        raise CredentialError("encodedList cannot be decoded") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise CredentialError("encodedList is truncated or too large")
    if len(bits) * 8 < MIN_STATUS_LIST_SIZE:
        raise CredentialError("the status list is shorter than the minimum")
    if not 0 <= index < len(bits) * 8:
        raise CredentialError("status index outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
