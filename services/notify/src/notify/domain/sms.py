"""SMS encoding and segmentation (3GPP TS 23.038).

A text of only GSM-7 characters takes 160 septets in one message, 153 per part when split (the
user-data header takes 7); an extension character (€, [, ], {, }, \\, ^, ~, |, form feed) takes two
septets and is never split across parts. Anything else — Korean, Chinese, most emoji — goes as
UCS-2: 70 UTF-16 code units in one message, 67 per part, a surrogate pair never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class Segmented:
    encoding: Encoding
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)


def encoding_of(text: str) -> Encoding:
    return Encoding.GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else Encoding.UCS2


def _units(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16: astral characters are a surrogate pair


def length(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text takes."""
    encoding = encoding_of(text)
    return sum(_units(c, encoding) for c in text)


def segment(text: str) -> Segmented:
    """The parts the text is sent in: one if it fits, else parts of 153 septets or 67 code units."""
    encoding = encoding_of(text)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_PART)
    if sum(_units(c, encoding) for c in text) <= single:
        return Segmented(encoding, (text,))
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        units = _units(char, encoding)
        if used + units > part:  # a two-unit character moves whole into the next part
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += units
    if current:
        parts.append("".join(current))
    return Segmented(encoding, tuple(parts))


def compose(text: str, link: str = "") -> str:
    """The SMS for a notice: its text on one line, then the link. The templates keep the text short
    enough for one segment with a link (GSM-7 160, UCS-2 70); nothing is cut off when it is not:
    a longer message is sent in parts (`segment`) rather than lose its amount or its link."""
    return " ".join(f"{' '.join(text.split())} {link}".split())
