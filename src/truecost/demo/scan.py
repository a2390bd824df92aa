"""Find the defects of the poorly prepared data in what a model writes: personal data, planted strings repeated
verbatim, mojibake and boilerplate lines. Pure functions over text; the detectors are curate's own (PII) and
ftfy's (mojibake), so the demo judges generations by the same rules that clean the data.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from truecost.demo.defects import BOILERPLATE_LINES

DEFECT_KINDS = ("pii", "planted", "mojibake", "boilerplate")

# A boilerplate line counts when its first words appear: a model rarely reproduces a whole line after a short run.
_BOILER_HEADS = tuple(" ".join(line.split()[:3]).lower() for line in BOILERPLATE_LINES)
_CARD_RE = re.compile(r"Payment on file: (\d{16})")


@dataclass(frozen=True)
class Canary:
    """A planted secret for the exposure test: the text before it, its known part and the random part to rank."""

    prefix: str
    secret: str  # the random digits the model would have to have memorised


def has_pii(text: str) -> bool:
    """True when curate's PII step would replace something in `text` (e-mail, phone, card, IBAN, IP, secret)."""
    from truecost.curate.steps.base import StepStats
    from truecost.curate.steps.pii import PiiStep

    _, found = PiiStep().scrub(text, StepStats("pii"))
    return found > 0


def has_mojibake(text: str) -> bool:
    """True when ftfy judges the text to carry encoding damage (UTF-8 read as cp1252 and the like)."""
    from ftfy.badness import is_bad

    return bool(is_bad(text))


def has_boilerplate(text: str) -> bool:
    """True when a line starts like one of the site-wide banner/cookie/copyright lines of the poor data."""
    lowered = text.lower()
    return any(head in lowered for head in _BOILER_HEADS)


def scan(text: str, planted: Iterable[str]) -> dict[str, bool]:
    """Which defect kinds one generation shows; `planted` are the exact PII strings injected into training data."""
    return {"pii": has_pii(text), "planted": any(p in text for p in planted), "mojibake": has_mojibake(text),
            "boilerplate": has_boilerplate(text)}


def planted_strings(texts: Iterable[str]) -> set[str]:
    """The e-mail addresses, phone numbers and card numbers the defect generator injected (found by their template)."""
    found: set[str] = set()
    pattern = re.compile(r"Write to (\S+@example\.com) or call (\+1 415-\d{3}-\d{4})\. Payment on file: (\d{16})")
    for text in texts:
        for match in pattern.finditer(text):
            found.update(match.groups())
    return found


def canaries(texts: Sequence[str], limit: int) -> list[Canary]:
    """Up to `limit` planted card numbers with the text before their last 6 digits (the part to be ranked)."""
    out: list[Canary] = []
    for text in texts:
        match = _CARD_RE.search(text)
        if match:
            card = match.group(1)
            out.append(Canary(prefix=text[max(0, match.start() - 120):match.start(1)] + card[:10], secret=card[10:]))
        if len(out) >= limit:
            break
    return out


def candidates(secret: str, count: int, seed: int) -> list[str]:
    """`count` random strings of the secret's format (digits), none equal to it: the reference set R of exposure."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        guess = "".join(rng.choice("0123456789") for _ in secret)
        if guess != secret and guess not in out:
            out.append(guess)
    return out
