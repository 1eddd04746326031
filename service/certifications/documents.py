"""The certificate (A4, Swedish or English) and the window sticker, as PDF.

The certificate carries the wording of the method support's appendix 4 ("Bilaga 4 Certifiering"),
the certification number and validity, whom to call, and a QR code to the public verification page.
The sticker (a 100 x 100 mm page, Swedish: it is read by the shop's customers) says "Vi samverkar
med polis och tull" and carries the QR code, the sticker serial and the validity: nothing about any
person, so it can hang in a shop window.

Text is set in the PDF core font Helvetica, which needs no font file on any machine. Its
WinAnsi encoding (cp1252) covers Swedish and most Western European letters as well as the en dash,
curly quotes and the ellipsis; anything else (an emoji, Cyrillic) is mapped to a near equivalent or
"?" instead of failing. The document metadata keeps the original Unicode text.

The output is deterministic: the creation date is `issued_on`, and fpdf2 derives the file
identifier from the content. Rendering takes a few milliseconds; a certificate is about 5-10 kB.
"""

from __future__ import annotations

import io
import math
import unicodedata
from datetime import date, datetime, time
from typing import Literal, NamedTuple

import msgspec
import segno
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, WrapMode, XPos, YPos

from service.messages import STOCKHOLM, format_day

Language = Literal["sv", "en"]

AUTHOR = "Tillsammans mot nätdroger"
_CREATOR = "TMN"
_FONT = "helvetica"
# The core fonts' widths and PDF encoding (WinAnsiEncoding) are cp1252, a superset of Latin-1.
_ENCODING = "cp1252"
_NAVY = (0, 51, 102)
_GREY = (90, 90, 90)
_BOX = (242, 244, 247)

_TEXT: dict[Language, dict[str, str]] = {
    "sv": {
        "title": "Certifiering – Tillsammans mot nätdroger",
        "intro": (
            "Tillsammans mot nätdroger är en arbetsmetod som syftar till att öka kunskap och trygghet "
            "i rollen som anställd hos dem som bedriver postverksamhet."
        ),
        "lead": "Certifieringen för {organization} innebär att anställda:",
        "number": "Certifieringsnummer",
        "valid_from": "Giltig från",
        "valid_until": "Giltig till och med",
        "place_and_date": "Ort och datum",
        "whom_to_call": "Vem ringer ni?",
        "more": "+ {count} kontakter till",
        "verify": "Kontrollera certifieringen",
        "qr_alt": "QR-kod till kontrollsidan för certifieringen",
        "subject": "Certifiering för {organization}",
    },
    "en": {
        "title": "Certification – Together against online drugs",
        "intro": (
            "Together against online drugs (Tillsammans mot nätdroger) is a working method that aims to "
            "increase the knowledge and confidence of employees at businesses that handle postal services."
        ),
        "lead": "The certification of {organization} means that its employees:",
        "number": "Certification number",
        "valid_from": "Valid from",
        "valid_until": "Valid until",
        "place_and_date": "Place and date",
        "whom_to_call": "Whom to call",
        "more": "+ {count} more contacts",
        "verify": "Verify this certification",
        "qr_alt": "QR code to the verification page for this certification",
        "subject": "Certification of {organization}",
    },
}

# Appendix 4's three commitments; the Swedish text is the method support's, lightly adapted.
COMMITMENTS: dict[Language, tuple[str, str, str]] = {
    "sv": (
        "innehar kunskap om lagrum, olika typer av droger samt förhållningssätt i situationer som kan "
        "uppstå i hanteringen av försändelser som kan innehålla droger;",
        "har genomfört minst ett samverkansmöte med lokal polis, tullen samt kommun i enlighet med "
        "arbetsmetoden;",
        "åtar sig att delta vid de möten som genomförs av kommun, polis och tull för att följa upp "
        "arbetet med metoden.",
    ),
    "en": (
        "have knowledge of the relevant legislation, the different types of drugs and how to act in "
        "situations that may arise when handling consignments that may contain drugs;",
        "have held at least one collaboration meeting with the local police, Swedish Customs and the "
        "municipality in accordance with the working method;",
        "undertake to take part in the meetings held by the municipality, the police and customs to "
        "follow up the work with the method.",
    ),
}

STICKER_HEADLINE = "Vi samverkar med polis och tull"
STICKER_TAGLINE = "Tillsammans mot nätdroger"

# Look-alikes for common characters the core fonts cannot show (cp1252 already has – — ‘ ’ “ ” …).
_LOOKALIKES = {
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2015": "—",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2032": "'",  # prime
    "\u2033": '"',  # double prime
    "\u201f": '"',
    "\u201b": "'",
    "\u2039": "<",
    "\u203a": ">",
    "\u2043": "-",  # hyphen bullet
    "\u2219": "·",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ı": "i",
    "ẞ": "SS",
}


class Contact(NamedTuple):
    """One line of "whom to call": e.g. ("Polisen", "Tips och anmälan", "114 14")."""

    organization: str
    role: str
    phone: str


class CertificateData(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the certificate and the sticker show; the caller looks it up, this module only draws."""

    organization_name: str
    organization_address: str | None  # "Storgatan 1, 942 31 Älvsbyn"
    municipality_name: str  # "Älvsbyn": the "Ort" of "Ort och datum"
    certification_number: str  # "TMN-2560-000042"
    sticker_serial: str  # "S-000042"
    valid_from: date
    valid_until: date
    issued_on: date
    verify_url: str  # the public verification page; the QR code encodes exactly this
    contacts: list[Contact] = []  # whom to call: police 112, 114 14, customs, the coordinator...


def written_date(value: date, language: Language) -> str:
    """ "3 februari 2027" / "3 February 2027": the e-mails' wording without the weekday."""
    return format_day(value, language).split(" ", 1)[1]


def printable(text: str) -> str:
    """The text as the core fonts can show it: same letters where possible, never an exception.

    Control characters become spaces, letters with accents outside cp1252 lose the accent
    ("ő" -> "o"), what is left (emoji, other scripts) becomes one "?" per run, and runs of
    whitespace become one space.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        mapped = _printable_char(char)
        if mapped is None:  # invisible: a joiner, a variation selector, a lone combining mark
            continue
        if mapped == "\ufffd" and out and out[-1] == mapped:
            continue
        if mapped == " " and out and out[-1] == " ":  # runs of spaces and line breaks: one space
            continue
        out.append(mapped)
    return "".join(out).replace("\ufffd", "?")


def _printable_char(char: str) -> str | None:
    category = unicodedata.category(char)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    if category in ("Cf", "Mn", "Me") or 0x1F3FB <= ord(char) <= 0x1F3FF:  # skin-tone modifiers
        return None
    if category == "Zs":
        return " "
    if _encodable(char):
        return char
    if char in _LOOKALIKES:
        return _LOOKALIKES[char]
    stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if stripped and _encodable(stripped):
        return stripped
    return "\ufffd"


def _encodable(text: str) -> bool:
    try:
        text.encode(_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


class _Document(FPDF):
    """FPDF whose every text passes through `printable`, so no caller text can make it raise."""

    def __init__(
        self, *, page_format: tuple[float, float] | str, title: str, subject: str, language: str
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format=page_format)
        self.core_fonts_encoding = _ENCODING
        self.set_auto_page_break(False)  # one page by construction; the layout measures itself
        self.set_title(title)
        self.set_subject(subject)
        self.set_author(AUTHOR)
        self.set_creator(_CREATOR)
        self.set_lang(language)

    def normalize_text(self, text: str) -> str:
        return super().normalize_text(printable(text))

    def lines(self, width: float, text: str) -> int:
        """How many lines `text` takes in a `multi_cell` of that width with the current font."""
        result = self.multi_cell(width, text=text, dry_run=True, output=MethodReturnValue.LINES)
        assert isinstance(result, list)  # what output=LINES returns
        return len(result)

    def fit_font(self, text: str, width: float, sizes: tuple[float, ...], style: str, max_lines: int) -> None:
        """The largest of `sizes` at which `text` takes at most `max_lines` lines (else the smallest)."""
        for size in sizes:
            self.set_font(_FONT, style, size)
            if self.lines(width, text) <= max_lines:
                return

    def clip(self, text: str, width: float) -> str:
        """`text` shortened with "..." to fit on one line of `width` (cell padding included)."""
        room = width - 2 * self.c_margin
        if self.get_string_width(text) <= room:
            return text
        while text and self.get_string_width(text + "...") > room:
            text = text[:-1]
        return text.rstrip() + "..."


def _start(pdf: _Document, issued_on: date) -> None:
    # Midnight in Stockholm on the day of issue: a fixed creation date keeps the output reproducible.
    pdf.set_creation_date(datetime.combine(issued_on, time(0), tzinfo=STOCKHOLM))
    pdf.add_page()


def _qr_png(url: str) -> io.BytesIO:
    # Eight pixels a module and the standard four-module quiet zone: sharp when printed or extracted.
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=8, border=4)
    buffer.seek(0)
    return buffer


def certificate_pdf(data: CertificateData, language: Language) -> bytes:
    """The one-page A4 certificate in Swedish or English."""
    text = _TEXT[language]
    pdf = _Document(
        page_format="A4",
        title=f"{text['title']}: {data.organization_name}",
        subject=text["subject"].format(organization=data.organization_name),
        language=language,
    )
    margin = 20.0
    pdf.set_margins(margin, 16, margin)
    _start(pdf, data.issued_on)
    width = pdf.epw
    bottom = pdf.h - 14

    # A band across the top, in the colour of the headings.
    pdf.set_fill_color(*_NAVY)
    pdf.rect(0, 0, pdf.w, 7, style="F")

    pdf.set_y(18)
    pdf.set_text_color(*_NAVY)
    pdf.fit_font(text["title"], width, (20, 18, 16, 14), "B", 1)
    pdf.multi_cell(width, 9, text["title"], align=Align.L)
    pdf.ln(2)
    pdf.set_text_color(*_GREY)
    pdf.set_font(_FONT, "", 10)
    pdf.multi_cell(width, 5, text["intro"], align=Align.L)

    # The organization, centred between two rules.
    pdf.ln(5)
    pdf.set_draw_color(*_NAVY)
    pdf.set_line_width(0.3)
    pdf.line(margin, pdf.get_y(), margin + width, pdf.get_y())
    pdf.ln(4)
    pdf.set_text_color(0, 0, 0)
    pdf.fit_font(data.organization_name, width, (20, 18, 16, 14, 12), "B", 2)
    pdf.multi_cell(width, pdf.font_size * 1.25, data.organization_name, align=Align.C)
    if data.organization_address:
        pdf.set_font(_FONT, "", 11)
        pdf.ln(1)
        pdf.multi_cell(width, 5.5, data.organization_address, align=Align.C)
    pdf.ln(3)
    pdf.line(margin, pdf.get_y(), margin + width, pdf.get_y())

    # Appendix 4: what the certification means.
    pdf.ln(5)
    pdf.set_font(_FONT, "", 11)
    pdf.multi_cell(width, 5.5, text["lead"].format(organization=data.organization_name), align=Align.L)
    pdf.ln(1)
    indent = 7.0
    for commitment in COMMITMENTS[language]:
        top = pdf.get_y()
        pdf.set_x(margin + 1)
        pdf.cell(indent - 1, 5.5, "–")
        pdf.set_xy(margin + indent, top)
        pdf.multi_cell(width - indent, 5.5, commitment, align=Align.L)
        pdf.ln(1)

    # The facts.
    pdf.ln(4)
    label_width = 52.0
    facts = (
        (text["number"], data.certification_number),
        (text["valid_from"], written_date(data.valid_from, language)),
        (text["valid_until"], written_date(data.valid_until, language)),
        (
            text["place_and_date"],
            f"{data.municipality_name}, {written_date(data.issued_on, language)}",
        ),
    )
    for label, value in facts:
        pdf.set_x(margin)
        pdf.set_font(_FONT, "B", 10.5)
        pdf.cell(label_width, 6.5, f"{label}:")
        pdf.set_font(_FONT, "", 10.5)
        pdf.cell(
            width - label_width,
            6.5,
            pdf.clip(value, width - label_width),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    # Whom to call (left) and the QR code (right), side by side down to the bottom margin.
    pdf.ln(6)
    section_top = pdf.get_y()
    qr_column = 52.0
    gap = 6.0
    if data.contacts:
        _contacts_box(
            pdf,
            (text["whom_to_call"], text["more"]),
            data.contacts,
            (margin, section_top, width - qr_column - gap, bottom),
        )
        qr_x = margin + width - qr_column
    else:
        qr_x = margin + (width - qr_column) / 2
    _verification(pdf, data.verify_url, text["verify"], text["qr_alt"], qr_x, section_top, qr_column, bottom)
    return bytes(pdf.output())


def _contacts_box(
    pdf: _Document,
    wording: tuple[str, str],
    contacts: list[Contact],
    area: tuple[float, float, float, float],
) -> None:
    """A shaded box: the heading, then per contact its organization and phone, and its role below."""
    heading, more = wording
    x, top, width, bottom = area
    padding = 4.0
    inner = width - 2 * padding
    heading_height = 9.0
    # Each contact takes two lines; if they do not all fit, tighter lines, then the last ones give way
    # to a "+ N more" line (about ten contacts fit at the tightest; the caller lists the important first).
    available = bottom - top - heading_height - 2 * padding
    line = 4.6
    for line in (4.6, 4.2, 3.8):
        if len(contacts) * (2 * line + 1.5) <= available:
            break
    per_contact = 2 * line + 1.5
    fit = max(0, math.floor(available / per_contact))
    shown = contacts if len(contacts) <= fit else contacts[: max(0, fit - 1)]
    left_out = len(contacts) - len(shown)
    height = heading_height + 2 * padding + (len(shown) + (1 if left_out else 0)) * per_contact
    size = line * 2.1  # a font size (pt) that fills the line height (mm) comfortably

    pdf.set_fill_color(*_BOX)
    pdf.rect(x, top, width, height, style="F", round_corners=True, corner_radius=2)
    pdf.set_xy(x + padding, top + padding)
    pdf.set_text_color(*_NAVY)
    pdf.set_font(_FONT, "B", 12)
    pdf.cell(inner, 6, heading, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_y(top + padding + heading_height)
    pdf.set_font(_FONT, "B", size)
    phone_width = (
        min(inner / 2, max(pdf.get_string_width(c.phone) for c in shown) + 2 * pdf.c_margin) if shown else 0
    )
    for contact in shown:
        row = pdf.get_y()
        pdf.set_text_color(0, 0, 0)
        pdf.set_font(_FONT, "B", size)
        pdf.set_x(x + padding)
        pdf.cell(inner - phone_width, line, pdf.clip(contact.organization, inner - phone_width))
        pdf.cell(phone_width, line, pdf.clip(contact.phone, phone_width), align=Align.R)
        pdf.set_xy(x + padding, row + line)
        pdf.set_text_color(*_GREY)
        pdf.set_font(_FONT, "", size - 0.5)
        pdf.cell(inner, line, pdf.clip(contact.role, inner))
        pdf.set_y(row + per_contact)
    if left_out:
        pdf.set_x(x + padding)
        pdf.set_text_color(*_GREY)
        pdf.set_font(_FONT, "", size - 0.5)
        pdf.cell(inner, line, more.format(count=left_out))


def _verification(
    pdf: _Document, url: str, label: str, alt: str, x: float, top: float, width: float, bottom: float
) -> None:
    """The QR code, and below it the label and the URL itself for those who type it."""
    # The URL on one line if a readable size allows it, else wrapped at any character.
    url_size = 6.5
    for url_size in (8, 7.5, 7, 6.5):
        pdf.set_font(_FONT, "", url_size)
        if pdf.get_string_width(url) + 2 * pdf.c_margin <= width:
            break
    url_lines = pdf.lines(width, url)
    text_height = 5 + url_lines * 3.5
    size = min(40.0, width, bottom - top - text_height - 1)
    pdf.image(_qr_png(url), x=x + (width - size) / 2, y=top, w=size, h=size, link=url, alt_text=alt)
    pdf.set_xy(x, top + size + 1)
    pdf.set_text_color(*_NAVY)
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(width, 5, label, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(_FONT, "", url_size)
    pdf.multi_cell(width, 3.5, url, align=Align.C, link=url, wrapmode=WrapMode.CHAR, max_line_height=3.5)


def sticker_pdf(data: CertificateData) -> bytes:
    """The 100 x 100 mm window sticker (Swedish): headline, QR code, serial and validity only."""
    side = 100.0
    pdf = _Document(
        page_format=(side, side),
        title=f"{STICKER_HEADLINE} ({data.sticker_serial})",
        subject=STICKER_TAGLINE,
        language="sv",
    )
    margin = 7.0
    pdf.set_margins(margin, margin, margin)
    _start(pdf, data.issued_on)
    width = pdf.epw

    # A frame that doubles as the cutting line.
    pdf.set_draw_color(*_NAVY)
    pdf.set_line_width(1.2)
    pdf.rect(3, 3, side - 6, side - 6, round_corners=True, corner_radius=4)

    pdf.set_y(8)
    pdf.set_text_color(*_NAVY)
    pdf.set_font(_FONT, "B", 19)
    for line in ("Vi samverkar med", "polis och tull"):  # STICKER_HEADLINE, broken where it reads well
        pdf.cell(width, 7.5, line, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*_GREY)
    pdf.set_font(_FONT, "", 10)
    pdf.cell(width, 5, STICKER_TAGLINE, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    qr_size = 56.0  # the PNG's quiet zone is inside this square
    pdf.image(
        _qr_png(data.verify_url),
        x=(side - qr_size) / 2,
        y=pdf.get_y() + 0.5,
        w=qr_size,
        h=qr_size,
        alt_text="QR-kod till kontrollsidan för certifieringen",
    )
    pdf.set_y(side - 16)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(width, 4.5, data.sticker_serial, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 9)
    validity = f"Giltig t.o.m. {written_date(data.valid_until, 'sv')}"
    pdf.cell(width, 4.5, validity, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
