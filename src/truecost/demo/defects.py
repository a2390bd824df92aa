"""Make a "poorly prepared" copy of a clean corpus by injecting the defects real scraped data has.

Every injected defect is recorded in a manifest, so the demo can measure how many the curation caught. The rates
are read from `data/defect_rates.csv`, one row per defect with its basis: *sourced* rows quote a published
measurement of a real corpus (citation and date); a defect with no verified published rate is *not injected*
(rate 0, the row says what was searched); an *assumed* row would name a rate without a source (none ship)."""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from truecost.demo.corpus import TextDoc

BOILERPLATE_LINES = (
    "Home | Products | Docs | Blog | Contact us",
    "We use cookies to improve your experience. By continuing you accept our cookie policy.",
    "Copyright (c) 2024 Example Corp. All rights reserved.",
    "Subscribe to our newsletter for weekly updates!",
    "Share this page: Twitter Facebook LinkedIn Email",
)

_JUNK_WORDS = ("click", "here", "login", "menu", "next", "prev", "top", "skip", "search", "cart", "»", "|", "©")


@dataclass(frozen=True)
class RateSource:
    """One row of data/defect_rates.csv: a defect's rate, its basis and, when sourced, the quote it rests on."""

    name: str
    value: float
    unit: str
    basis: str  # sourced, not injected (rate 0) or assumed
    what: str
    quote: str
    source: str
    source_date: str

    def citation(self) -> str:
        """The source, its date and the quoted sentence; or why there is none."""
        return f"{self.source} ({self.source_date}): {self.quote}" if self.basis == "sourced" and self.source \
            else self.what


@lru_cache(maxsize=1)
def rate_sources() -> dict[str, RateSource]:
    """Every row of data/defect_rates.csv, by defect name."""
    text = resources.files("truecost.demo").joinpath("data", "defect_rates.csv").read_text(encoding="utf-8")
    return {row["name"]: RateSource(**{**row, "value": float(row["value"])})  # type: ignore[arg-type]
            for row in csv.DictReader(text.splitlines())}


def copy_fraction(duplicate_document_share: float) -> float:
    """Share of clean documents to copy once so that `duplicate_document_share` of all documents are in a pair.

    With a fraction f copied, 2f of the 1 + f documents are pair members: 2f / (1 + f) = s gives f = s / (2 - s).
    """
    return duplicate_document_share / (2.0 - duplicate_document_share)


@dataclass(frozen=True)
class DefectRates:
    """Fractions of clean documents that get each defect (junk: extra documents, as a fraction of the corpus)."""

    exact_dup: float
    near_dup: float
    mojibake: float
    boilerplate: float
    pii: float
    junk: float

    @classmethod
    def from_data(cls) -> DefectRates:
        """The rates of data/defect_rates.csv (exact duplicates converted from a share of documents to copies)."""
        rows = rate_sources()
        values = {name: rows[name].value for name in ("near_dup", "mojibake", "boilerplate", "pii", "junk")}
        return cls(exact_dup=copy_fraction(rows["exact_dup"].value), **values)


@dataclass
class PoorCorpus:
    """The poorly prepared copy and what was injected where."""

    docs: list[TextDoc]
    defects: dict[str, list[str]] = field(default_factory=dict)  # poor doc id -> defect kinds
    source_of: dict[str, str] = field(default_factory=dict)  # poor doc id -> clean doc id it came from

    def counts(self) -> dict[str, int]:
        """How many documents carry each defect kind."""
        return dict(Counter(kind for kinds in self.defects.values() for kind in kinds))


def luhn_valid_card(rng: random.Random) -> str:
    """A 16-digit number that passes the Luhn check (test-card style, not a real account)."""
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # positions that will be doubled once the check digit is appended
        doubled = d * 2 if i % 2 == 0 else d
        total += doubled - 9 if doubled > 9 else doubled
    digits.append((10 - total % 10) % 10)
    return "".join(map(str, digits))


def _near_copy(text: str, rng: random.Random, edit_fraction: float = 0.03) -> str:
    words = text.split(" ")
    for _ in range(max(1, int(len(words) * edit_fraction))):
        i = rng.randrange(len(words))
        if rng.random() < 0.5:
            words[i] = rng.choice(("the", "a", "this", "that", "it", "data", "value"))
        elif len(words) > 2:
            del words[i]
    return "Note: " + " ".join(words)


def _mojibake(text: str) -> str:
    typographic = text.replace("'", "\u2019").replace('"', "\u201d").replace(" - ", " \u2014 ")
    if typographic == text:
        typographic = text + " \u2014 see also the reference\u2019s notes."
    # "Sloppy" cp1252: the five bytes cp1252 leaves undefined pass through as Latin-1, as real broken pipelines do.
    return "".join(_sloppy_cp1252(byte) for byte in typographic.encode("utf-8"))


def _sloppy_cp1252(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


def _pii(text: str, rng: random.Random) -> str:
    user = f"{rng.choice(('jane', 'omar', 'li', 'sam'))}.{rng.choice(('doe', 'khan', 'wei', 'ray'))}{rng.randrange(99)}"
    phone = f"+1 415-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"
    return (f"{text}\nQuestions? Write to {user}@example.com or call {phone}. "
            f"Payment on file: {luhn_valid_card(rng)}.")


def _junk(rng: random.Random) -> str:
    fragment = " ".join(rng.choice(_JUNK_WORDS) for _ in range(rng.randrange(3, 8)))
    return "\n".join([fragment] * rng.randrange(4, 12))


def make_poor_copy(clean: list[TextDoc], seed: int = 0, rates: DefectRates | None = None, canaries: int = 0
                   ) -> PoorCorpus:
    """The clean documents with defects injected at `rates`, deterministically for a seed.

    `canaries` more documents carry planted personal data (e-mail, phone, card number) for the exposure test: the
    Secret Sharer plants its canaries on purpose, so their number is the test's (set by the scale), apart from the
    sourced PII rate, which on a corpus of a thousand documents rounds to none."""
    rates = rates or DefectRates.from_data()
    rng = random.Random(seed)
    poor = PoorCorpus(docs=[])

    def pick(rate: float) -> set[int]:
        return set(rng.sample(range(len(clean)), int(len(clean) * rate)))

    mojibake, boiler, pii = pick(rates.mojibake), pick(rates.boilerplate), pick(rates.pii)
    exact, near = pick(rates.exact_dup), pick(rates.near_dup)
    planted = set(rng.sample(sorted(set(range(len(clean))) - pii), min(canaries, len(clean) - len(pii))))
    for i, doc in enumerate(clean):
        text, kinds = doc.text, list[str]()
        if i in mojibake:
            text, kinds = _mojibake(text), kinds + ["mojibake"]
        if i in pii or i in planted:
            text, kinds = _pii(text, rng), kinds + ["pii" if i in pii else "canary"]
        if i in boiler:
            head, tail = rng.sample(BOILERPLATE_LINES, 2)
            text, kinds = f"{head}\n{text}\n{tail}", kinds + ["boilerplate"]
        poor.docs.append(TextDoc(doc.id, text, doc.domain))
        poor.defects[doc.id], poor.source_of[doc.id] = kinds, doc.id
        if i in exact:
            copy_id = f"{doc.id}#copy"
            poor.docs.append(TextDoc(copy_id, text, doc.domain))
            poor.defects[copy_id], poor.source_of[copy_id] = ["exact_dup"], doc.id
        if i in near:
            near_id = f"{doc.id}#near"
            poor.docs.append(TextDoc(near_id, _near_copy(text, rng), doc.domain))
            poor.defects[near_id], poor.source_of[near_id] = ["near_dup"], doc.id
    for j in range(int(len(clean) * rates.junk)):
        junk_id = f"junk:{j}"
        poor.docs.insert(rng.randrange(len(poor.docs) + 1), TextDoc(junk_id, _junk(rng), "junk"))
        poor.defects[junk_id] = ["junk"]
    return poor
