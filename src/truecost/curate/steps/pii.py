"""pii: replace e-mail addresses, phone numbers, IP addresses, card numbers (Luhn), IBANs (mod-97) and secrets
with placeholders that stay consistent inside a document (the same value always gets the same placeholder)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import ClassVar

from truecost.curate.document import Document
from truecost.curate.settings import PiiSettings
from truecost.curate.steps.base import Step, StepStats


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
# Phones: an optional +country code, then 3 groups of digits separated by space, dot or dash (or a parenthesised
# area code). Dates (2024-01-15) and versions (1.2.3) do not match: they lack the digit counts required below.
# Cheap searches (they start with a character class) that every phone number / IPv6 address must contain.
_PHONE_HINT_RE = re.compile(r"\d{3}[ .-]\d{3}")
_IPV6_HINT_RE = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:")
_PHONE_RE = re.compile(r"(?<![\w+.-])(?<!\d )(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
                       r"(?![\w-]|\.\d| \d)")
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
_ASSIGNED_SECRET_RE = re.compile(
    r"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd|token)\b"
    r"[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9_\-/+=.]{12,})")


class _Contains:
    """Precondition: the text contains one of `literals` (a picklable callable, unlike a lambda)."""

    def __init__(self, literals: tuple[str, ...]) -> None:
        self.literals = literals

    def __call__(self, text: str) -> bool:
        return any(lit in text for lit in self.literals)


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


# Cheap preconditions (plain functions, not lambdas, so steps pickle for process pools and Ray).
def _mentions_secret(text: str) -> bool:
    if "=" not in text and ":" not in text:
        return False
    lower = text.lower()
    return any(word in lower for word in ("key", "secret", "token", "passw"))


def _has_at(text: str) -> bool:
    return "@" in text


def _has_dot(text: str) -> bool:
    return "." in text


def _may_have_ipv6(text: str) -> bool:
    return ("::" in text or text.count(":") > 4) and _IPV6_HINT_RE.search(text) is not None


def _may_have_phone(text: str) -> bool:
    return _PHONE_HINT_RE.search(text) is not None


class PiiStep(Step):
    """Finds each kind in a fixed order (secrets first, so a key is not half-taken for a phone) and replaces it."""

    name: ClassVar[str] = "pii"

    def __init__(self, cfg: PiiSettings | None = None) -> None:
        self.cfg = cfg or PiiSettings()
        # (kind, placeholder label, cheap precondition on the text, pattern, validator, capture group)
        detectors: list[tuple[str, str, Callable[[str], bool], re.Pattern[str], Callable[[str], bool], int]] = []
        kinds = set(self.cfg.kinds)
        if "secret" in kinds:
            for literals, pattern in _SECRET_RES:
                detectors.append(("secret", "SECRET", _Contains(literals), pattern, _always, 0))
            detectors.append(("secret", "SECRET", _mentions_secret, _ASSIGNED_SECRET_RE, _always, 1))
        if "email" in kinds:
            detectors.append(("email", "EMAIL", _has_at, _EMAIL_RE, _always, 0))
        if "iban" in kinds:
            detectors.append(("iban", "IBAN", _always, _IBAN_RE, iban_valid, 0))
        if "credit_card" in kinds:
            detectors.append(("credit_card", "CREDIT_CARD", _always, _CARD_RE, _valid_card, 0))
        if "ip" in kinds:
            detectors.append(("ip", "IP_ADDRESS", _has_dot, _IPV4_RE, _valid_ipv4, 0))
            detectors.append(("ip", "IP_ADDRESS", _may_have_ipv6, _IPV6_RE, _valid_ipv6, 0))
        if "phone" in kinds:
            detectors.append(("phone", "PHONE", _may_have_phone, _PHONE_RE, _valid_phone, 0))
        self.detectors = detectors

    def scrub(self, text: str, stats: StepStats) -> tuple[str, int]:
        """`text` with every detected item replaced, and how many were replaced."""
        numbering: dict[tuple[str, str], str] = {}
        per_label: dict[str, int] = {}
        replaced = 0
        for kind, label, precondition, pattern, validator, group in self.detectors:
            if not precondition(text):
                continue

            def substitute(match: re.Match[str], kind: str = kind, label: str = label,
                           validator: Callable[[str], bool] = validator, group: int = group) -> str:
                nonlocal replaced
                value = match.group(group)
                if not validator(value):
                    return match.group(0)
                key = (label, value)
                if key not in numbering:
                    per_label[label] = per_label.get(label, 0) + 1
                    numbering[key] = (f"<{label}_{per_label[label]}>" if self.cfg.placeholder == "numbered"
                                      else f"<{label}>")
                stats.changes[kind] += 1
                replaced += 1
                if group == 0:
                    return numbering[key]
                start, end = match.span(group)
                whole = match.group(0)
                offset = match.start(0)
                return whole[: start - offset] + numbering[key] + whole[end - offset:]

            text = pattern.sub(substitute, text)
        return text, replaced

    def process(self, doc: Document, stats: StepStats) -> bool:
        text, replaced = self.scrub(doc.text, stats)
        if replaced:
            stats.docs_modified += 1
            doc.text = text
            stats.add_example("replaced", doc, replacements=replaced)
        return True
