"""Validators for values msgspec's constraints cannot express (e-mail, phone, codes)."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from service.problems import invalid

_POSTAL_CODE = re.compile(r"^\s*(\d{3})\s?(\d{2})\s*$")
_ORG_NUMBER = re.compile(r"^(\d{6})-?(\d{4})$")


def normalize_email(value: str, field: str = "email") -> str:
    """Syntax-checked and normalised (domain lower-cased); no DNS look-up."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise invalid(field, f"not a valid e-mail address: {exc}") from exc


def normalize_phone(value: str, field: str = "phone") -> str:
    """Any common Swedish or international notation, returned in E.164 (+46701234567)."""
    try:
        number = phonenumbers.parse(value, "SE")
    except phonenumbers.NumberParseException as exc:
        raise invalid(field, "not a phone number; use E.164, e.g. +46701234567") from exc
    if not phonenumbers.is_valid_number(number):
        raise invalid(field, "not a valid phone number; use E.164, e.g. +46701234567")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_postal_code(value: str, field: str = "postal_code") -> str:
    """Swedish postal codes: five digits, stored without the space ("971 31" -> "97131")."""
    match = _POSTAL_CODE.match(value)
    if not match:
        raise invalid(field, "a Swedish postal code has five digits, e.g. 971 31")
    return match.group(1) + match.group(2)


def normalize_org_number(value: str, field: str = "org_number") -> str:
    """Swedish organisationsnummer NNNNNN-NNNN with a valid Luhn check digit."""
    match = _ORG_NUMBER.match(value.strip())
    if not match:
        raise invalid(field, "an organisation number looks like 556677-8899")
    digits = match.group(1) + match.group(2)
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    if total % 10:
        raise invalid(field, "the organisation number's check digit is wrong")
    return f"{match.group(1)}-{match.group(2)}"


def clean_name(value: str, field: str = "name") -> str:
    """Whitespace collapsed; a name of only spaces is no name."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise invalid(field, "must not be blank")
    return cleaned
