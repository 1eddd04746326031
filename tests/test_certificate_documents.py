"""Unit tests for service.certifications.documents: read the PDFs back as a reader and a phone would."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import pytest
import zxingcpp
from pypdf import PdfReader

from service.certifications.documents import (
    AUTHOR,
    COMMITMENTS,
    CertificateData,
    Contact,
    Language,
    certificate_pdf,
    printable,
    sticker_pdf,
)

VERIFY_URL = "https://tmn.example.se/v/TMN-2560-000042?k=Zq3_x-9"
COORDINATOR = "Åsa Öberg"
CONTACTS = [
    Contact("Polisen", "Vid pågående brott", "112"),
    Contact("Polisen", "Tips och anmälan", "114 14"),
    Contact("Tullverket", "Tips om smuggling", "0771-520 520"),
    Contact("Älvsbyns kommun", f"Samordnare {COORDINATOR}", "0929-170 00"),
]
LANGUAGES: tuple[Language, ...] = ("sv", "en")
WRITTEN_VALID_UNTIL = {"sv": "3 februari 2027", "en": "3 February 2027"}


def make_data(**overrides: Any) -> CertificateData:
    values: dict[str, Any] = {
        "organization_name": "ICA Nära Älvsbyn",
        "organization_address": "Storgatan 1, 942 31 Älvsbyn",
        "municipality_name": "Älvsbyn",
        "certification_number": "TMN-2560-000042",
        "sticker_serial": "S-000042",
        "valid_from": date(2026, 2, 3),
        "valid_until": date(2027, 2, 3),
        "issued_on": date(2026, 2, 1),
        "verify_url": VERIFY_URL,
        "contacts": CONTACTS,
    }
    values.update(overrides)
    return CertificateData(**values)


def read(pdf: bytes) -> PdfReader:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader


def text_of(pdf: bytes) -> str:
    """The page's text with line breaks and runs of spaces made single spaces (wrapping is layout)."""
    return " ".join(read(pdf).pages[0].extract_text().split())


def qr_payloads(pdf: bytes) -> list[str]:
    """Every QR code in the page's images, decoded by a real decoder."""
    payloads: list[str] = []
    for image in read(pdf).pages[0].images:
        payloads += [str(result.text) for result in zxingcpp.read_barcodes(image.image.convert("L"))]
    return payloads


@pytest.mark.parametrize("language", LANGUAGES)
def test_certificate_text(language: Language) -> None:
    text = text_of(certificate_pdf(make_data(), language))

    assert "ICA Nära Älvsbyn" in text
    assert "Storgatan 1, 942 31 Älvsbyn" in text
    assert "TMN-2560-000042" in text
    assert WRITTEN_VALID_UNTIL[language] in text
    for commitment in COMMITMENTS[language]:
        assert commitment in text
    assert "114 14" in text
    assert "0771-520 520" in text
    assert COORDINATOR in text  # the coordinator's role line is the certificate's business, not the sticker's
    if language == "sv":
        assert "Certifiering – Tillsammans mot nätdroger" in text
        assert "Certifieringen för ICA Nära Älvsbyn innebär att anställda:" in text
        assert "har genomfört minst ett samverkansmöte med lokal polis" in text
        assert "Giltig från: 3 februari 2026" in text
        assert "Ort och datum: Älvsbyn, 1 februari 2026" in text
        assert "Vem ringer ni?" in text
        assert "Kontrollera certifieringen" in text
        assert "February" not in text
    else:
        assert "Certification – Together against online drugs" in text
        assert "The certification of ICA Nära Älvsbyn means that its employees:" in text
        assert "have held at least one collaboration meeting with the local police" in text
        assert "Valid from: 3 February 2026" in text
        assert "Place and date: Älvsbyn, 1 February 2026" in text
        assert "Whom to call" in text
        assert "Verify this certification" in text
        assert "februari" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_certificate_qr_code_is_the_verify_url(language: Language) -> None:
    pdf = certificate_pdf(make_data(), language)

    assert qr_payloads(pdf) == [VERIFY_URL]
    assert VERIFY_URL in read(pdf).pages[0].extract_text().replace("\n", "")  # printed for typing in


def test_sticker() -> None:
    pdf = sticker_pdf(make_data())
    text = text_of(pdf)

    assert "Vi samverkar med polis och tull" in text
    assert "Tillsammans mot nätdroger" in text
    assert "S-000042" in text
    assert "Giltig t.o.m. 3 februari 2027" in text
    assert qr_payloads(pdf) == [VERIFY_URL]
    # Nothing about whom to call, and no person.
    for contact in CONTACTS:
        assert contact.phone not in text
        assert contact.role not in text
    assert COORDINATOR not in text
    assert "Åsa" not in text
    assert "Vem ringer" not in text
    page = read(pdf).pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (283, 283)  # 100 mm


def test_certificate_is_a4_and_has_metadata() -> None:
    reader = read(certificate_pdf(make_data(), "sv"))

    page = reader.pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    metadata = reader.metadata
    assert metadata is not None
    assert metadata.author == AUTHOR == "Tillsammans mot nätdroger"
    assert metadata.title is not None
    assert "Certifiering" in metadata.title
    assert "ICA Nära Älvsbyn" in metadata.title
    assert metadata.creation_date is not None
    assert metadata.creation_date.date() == date(2026, 2, 1)


def test_output_is_deterministic() -> None:
    assert certificate_pdf(make_data(), "sv") == certificate_pdf(make_data(), "sv")
    assert certificate_pdf(make_data(), "en") == certificate_pdf(make_data(), "en")
    assert sticker_pdf(make_data()) == sticker_pdf(make_data())
    assert certificate_pdf(make_data(), "sv") != certificate_pdf(make_data(issued_on=date(2026, 2, 2)), "sv")


def test_awkward_organization_names_do_not_crash() -> None:
    name = "Kiosken – 24/7 <script>alert(1)</script> (och \\ 'co') “Café” … 🍕👩‍💻"
    data = make_data(organization_name=name)

    for language in LANGUAGES:
        pdf = certificate_pdf(data, language)
        text = text_of(pdf)
        # cp1252 keeps the en dash, the curly quotes and the ellipsis; the emoji become one "?".
        assert "Kiosken – 24/7 <script>alert(1)</script> (och \\ 'co') “Café” … ?" in text
        assert qr_payloads(pdf) == [VERIFY_URL]
    sticker_pdf(data)


def test_characters_outside_the_core_fonts_are_mapped() -> None:
    data = make_data(
        organization_name="Łódź Kraków Őrség Straße ẞ Москва",
        organization_address="Ring\u00a0road 1\u2009km\u2212east\nline two\u200b",
        municipality_name="Överkalix",
    )

    text = text_of(certificate_pdf(data, "sv"))

    assert "Lódz Kraków Orség Straße SS ?" in text  # only what cp1252 lacks loses its accent
    assert "Ring road 1 km-east line two" in text
    assert "Ort och datum: Överkalix" in text


def test_printable() -> None:
    assert printable("Åsa Öberg, Älvsbyn, é ü ø") == "Åsa Öberg, Älvsbyn, é ü ø"
    assert printable("a – b — “c” ‘d’ … €") == "a – b — “c” ‘d’ … €"  # all in cp1252
    assert printable("x\u2212y\u2010z") == "x-y-z"
    assert printable("A\u030a") == "Å"  # decomposed (macOS) input composes
    assert printable("tab\tnew\n\nline  two") == "tab new line two"
    assert printable("👍🏽 ok ❤️ 👩‍👩‍👧") == "? ok ? ?"
    assert printable("日本語") == "?"


def test_many_contacts_and_long_values_still_fit_one_page() -> None:
    contacts = [
        Contact(f"Organisation nummer {i} med ett mycket långt namn AB", f"Roll {i}", "010-1")
        for i in range(40)
    ]
    long_url = "https://tmn.example.se/verify/" + "x" * 150
    data = make_data(
        organization_name="Den ovanligt långa organisationens namn " * 6,
        organization_address="Storgatan 1, 942 31 Älvsbyn, " * 4,
        contacts=contacts,
        verify_url=long_url,
    )

    for language in LANGUAGES:
        pdf = certificate_pdf(data, language)
        text = text_of(pdf)  # also asserts one page
        assert "Organisation nummer 0" in text
        assert "Organisation nummer 39" not in text
        assert re.search(r"\+ \d+ (more contacts|kontakter till)", text)
        assert qr_payloads(pdf) == [long_url]
    assert qr_payloads(sticker_pdf(data)) == [long_url]


def test_without_contacts_or_address() -> None:
    data = make_data(contacts=[], organization_address=None)

    text = text_of(certificate_pdf(data, "sv"))

    assert "Vem ringer ni?" not in text
    assert "Storgatan" not in text
    assert qr_payloads(certificate_pdf(data, "sv")) == [VERIFY_URL]
