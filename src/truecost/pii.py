"""Personal data and secrets in text: one set of patterns for every part (curate scrubs, review checks answers).

Standard library only, so any part can import it without extras:

    from truecost.pii import find_pii
    find_pii("write to ana@example.org")  # [PiiMatch(kind='email', value='ana@example.org', start=9, end=24)]

Each kind is a cheap precondition, a regular expression and a validator (Luhn for cards, mod-97 for IBANs,
`ipaddress` for IPv6...), so look-alikes (dates, versions, failed checksums) are not reported.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Detection order: where two kinds overlap, the earlier one wins (a key is not half-taken for a phone number).
KINDS: tuple[str, ...] = ("secret", "email", "iban", "credit_card", "ip", "us_ssn", "phone")
# Placeholder label of each kind (`<EMAIL_1>`); review reports use the same names.
LABELS: dict[str, str] = {"secret": "SECRET", "email": "EMAIL", "iban": "IBAN", "credit_card": "CREDIT_CARD",
                          "ip": "IP_ADDRESS", "us_ssn": "US_SSN", "phone": "PHONE"}


@dataclass(frozen=True)
class PiiMatch:
    """One item found: its kind, the matched value, and where it is in the text."""

    kind: str
    value: str
    start: int
    end: int


def luhn_valid(number: str) -> bool:
    """True when the digits of `number` pass the Luhn check (ISO/IEC 7812)."""
    digits = [int(ch) for ch in number if ch.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# IBAN lengths per country (ISO 13616 registry, SWIFT IBAN Registry release 95, 2023); unknown countries: 15-34.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}


def iban_valid(iban: str) -> bool:
    """True when `iban` (spaces allowed) has its country's length and passes the ISO 7064 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    as_digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(as_digits) % 97 == 1


# Issuer prefixes of the major card networks (ISO/IEC 7812 IIN ranges): Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay, Maestro. A Luhn-valid digit run without one of these is more likely an id than a card.
_CARD_PREFIX_RE = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6011|64[4-9]|65|35|30[0-5]|36|38|62|50|5[6-9]|6[37])")

_EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])")
# The boundary lookbehind follows the first digit so the scan can skip quickly to digits.
_CARD_RE = re.compile(r"\d(?<![\d-].)(?:[ -]?\d){12,18}(?![\d-])")
_IBAN_RE = re.compile(r"[A-Z](?<![A-Za-z0-9].)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
# Starts with a plain digit class (fast scanning); the boundary check sits after the first digit; octets <= 255
# are checked by the validator.
_IPV4_RE = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\.?\d)")
# IPv6 candidates: hex groups and colons; ipaddress decides (so "12:30:45" or "std::map" are not taken).
_IPV6_RE = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*\d)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# US social security numbers: area 001-899 except 666, group 01-99, serial 0001-9999 (SSA numbering rules).
_SSN_RE = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
# Phones: an optional +country code, then 3 groups of digits separated by space, dot or dash (or a parenthesised
# area code). Dates (2024-01-15) and versions (1.2.3) do not match: they lack the digit counts required below.
_PHONE_RE = re.compile(r"(?<![\w+.-])(?<!\d )(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
                       r"(?![\w-]|\.\d| \d)")
# Cheap searches (they start with a character class) that every phone number / IPv6 address / SSN must contain.
_PHONE_HINT_RE = re.compile(r"\d{3}[ .-]\d{3}")
_IPV6_HINT_RE = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:")
_SSN_HINT_RE = re.compile(r"\d-\d\d-\d")
# Secrets with a recognisable shape (provider token formats), and key=value assignments of long opaque values.
# Each with the literals one of which must occur: a substring test is far cheaper than a regex scan.
_SECRET_RES: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (("PRIVATE KEY",),
     re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----")),
    (("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),  # AWS access key id
    (("gh", "github_pat_"), re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b")),  # GitHub
    (("xox",), re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),  # Slack tokens
    (("sk-",), re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b")),  # OpenAI / Anthropic keys
    (("k_live_", "k_test_"), re.compile(r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),  # Stripe keys
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),  # Google API key
    (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),  # JSON Web Token
]
# The value (group 1) is the secret; the key name before it stays readable.
_ASSIGNED_SECRET_RE = re.compile(
    r"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd|token)\b"
    r"[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9_\-/+=.]{12,})")


def _valid_ipv4(text: str) -> bool:
    return all(int(part) <= 255 and (part == "0" or not part.startswith("0")) for part in text.split("."))


def _valid_ipv6(text: str) -> bool:
    if len(text) < 6:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _valid_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX_RE.match(digits)) and luhn_valid(digits)


def _valid_phone(text: str) -> bool:
    groups = re.findall(r"\d+", text)
    # "1999 2000 2001" is a list of years, not a phone number.
    if all(len(g) == 4 and g[:2] in ("19", "20") for g in groups):
        return False
    return 9 <= sum(len(g) for g in groups) <= 15


def _always(_text: str) -> bool:
    return True


class _Contains:
    """Precondition: the text contains one of `literals` (picklable, unlike a lambda, for process pools)."""

    def __init__(self, literals: tuple[str, ...]) -> None:
        self.literals = literals

    def __call__(self, text: str) -> bool:
        return any(lit in text for lit in self.literals)


class _Searches:
    """Precondition: `pattern` occurs in the text (a cheap pattern every match of the real one contains)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def __call__(self, text: str) -> bool:
        return self.pattern.search(text) is not None


def _mentions_secret(text: str) -> bool:
    if "=" not in text and ":" not in text:
        return False
    lower = text.lower()
    return any(word in lower for word in ("key", "secret", "token", "passw"))


def _may_have_ipv6(text: str) -> bool:
    return ("::" in text or text.count(":") > 4) and _IPV6_HINT_RE.search(text) is not None


@dataclass(frozen=True)
class Detector:
    """How one kind is found: a cheap test on the whole text, the pattern, a validator of each value, and the
    pattern group that holds the value (0: the whole match)."""

    kind: str
    precondition: Callable[[str], bool]
    pattern: re.Pattern[str]
    validator: Callable[[str], bool]
    group: int = 0

    def find(self, text: str) -> list[PiiMatch]:
        """Every valid match of this detector in `text`."""
        if not self.precondition(text):
            return []
        out = []
        for m in self.pattern.finditer(text):
            value = m.group(self.group)
            if self.validator(value):
                out.append(PiiMatch(self.kind, value, m.start(self.group), m.end(self.group)))
        return out


def _build_detectors() -> dict[str, list[Detector]]:
    secret = [Detector("secret", _Contains(literals), pattern, _always) for literals, pattern in _SECRET_RES]
    secret.append(Detector("secret", _mentions_secret, _ASSIGNED_SECRET_RE, _always, group=1))
    return {
        "secret": secret,
        "email": [Detector("email", _Contains(("@",)), _EMAIL_RE, _always)],
        "iban": [Detector("iban", _always, _IBAN_RE, iban_valid)],
        "credit_card": [Detector("credit_card", _always, _CARD_RE, _valid_card)],
        "ip": [Detector("ip", _Contains((".",)), _IPV4_RE, _valid_ipv4),
               Detector("ip", _may_have_ipv6, _IPV6_RE, _valid_ipv6)],
        "us_ssn": [Detector("us_ssn", _Searches(_SSN_HINT_RE), _SSN_RE, _always)],
        "phone": [Detector("phone", _Searches(_PHONE_HINT_RE), _PHONE_RE, _valid_phone)],
    }


# The patterns, by kind: what other parts import (e.g. to show which kinds exist, or to run one kind alone).
DETECTORS: dict[str, list[Detector]] = _build_detectors()


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiMatch]:
    """Personal data and secrets in `text`, in text order, never overlapping (earlier kinds in `KINDS` win).

    `kinds` picks a subset of `KINDS` (default: all); an unknown kind is a ValueError.
    """
    wanted = KINDS if kinds is None else tuple(kinds)
    unknown = [k for k in wanted if k not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown PII kind {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    taken: list[PiiMatch] = []
    starts: list[int] = []  # starts of `taken`, which is kept sorted by start and never overlaps
    for kind in KINDS:
        if kind not in wanted:
            continue
        for detector in DETECTORS[kind]:
            for match in detector.find(text):
                i = bisect.bisect_left(starts, match.start)
                if (i > 0 and taken[i - 1].end > match.start) or (i < len(taken) and taken[i].start < match.end):
                    continue
                taken.insert(i, match)
                starts.insert(i, match.start)
    return taken
