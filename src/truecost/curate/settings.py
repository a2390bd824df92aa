"""Settings of the curate pipeline: the `[curate]` section of truecost.toml, or a recipe file of the same shape.

Every threshold defaults to its published value; the source is named next to each group.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from truecost.config import Section, describe_validation_error
from truecost.errors import UserError

StepName = Literal["normalize", "pii", "language", "quality", "exact", "near"]
ALL_STEPS: tuple[StepName, ...] = ("normalize", "pii", "language", "quality", "exact", "near")
RuleSet = Literal["gopher_quality", "gopher_repetition", "c4", "fineweb"]
PiiKind = Literal["email", "phone", "ip", "credit_card", "iban", "us_ssn", "secret"]
ALL_RULE_SETS: tuple[RuleSet, ...] = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
ALL_PII_KINDS: tuple[PiiKind, ...] = ("email", "phone", "ip", "credit_card", "iban", "us_ssn", "secret")


class NormalizeSettings(Section):
    """Text repair; boilerplate lines are those found in many documents (off for small corpora by the minimums)."""

    fix_mojibake: bool = True
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    fix_whitespace: bool = True
    remove_control: bool = True
    remove_invisible: bool = True
    fix_quotes: bool = True
    fix_dashes: bool = True
    boilerplate: bool = True
    # A line is boilerplate when it has >= min_words words and appears in >= min_docs documents that are also
    # >= min_fraction of the corpus. Licence and legal text recurs legitimately, hence the high fraction.
    boilerplate_min_docs: int = Field(10, ge=2)
    boilerplate_min_fraction: float = Field(0.5, gt=0, le=1)
    boilerplate_min_words: int = Field(3, ge=1)


class PiiSettings(Section):
    """Which kinds of personal data and secrets to replace, and how placeholders look."""

    kinds: list[PiiKind] = Field(default_factory=lambda: list(ALL_PII_KINDS))
    # numbered: <EMAIL_1>, <EMAIL_2>... (the same value gets the same number within a document); plain: <EMAIL>.
    placeholder: Literal["numbered", "plain"] = "numbered"


class LanguageSettings(Section):
    """Offline language identification with py3langid (model shipped in the package)."""

    languages: list[str] = Field(default_factory=lambda: ["en"])
    min_score: float = Field(0.65, ge=0, le=1)  # datatrove/FineWeb keep English at >= 0.65 language score
    max_chars: int = Field(2000, ge=100)  # classify the first N characters: ~300 words settle the language


class GopherSettings(Section):
    """Rae et al. 2021 (Gopher), Appendix A.1.1 and Table A1."""

    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    max_dup_line_fraction: float = 0.30
    max_dup_paragraph_fraction: float = 0.30
    max_dup_line_char_fraction: float = 0.20
    max_dup_paragraph_char_fraction: float = 0.20
    max_top_ngram_char_fraction: dict[int, float] = Field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    max_dup_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})


class C4Settings(Section):
    """Raffel et al. 2020 (C4), section 2.2; numbers as in the TFDS C4 builder. The bad-words list is not applied."""

    min_words_per_line: int = 5
    min_sentences: int = 3
    max_word_length: int = 1000
    require_end_mark: bool = True
    filter_javascript: bool = True
    filter_policy: bool = True
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True
    remove_citations: bool = True


class FineWebSettings(Section):
    """Penedo et al. 2024 (FineWeb), section 3.6: the three custom filters."""

    min_punct_line_fraction: float = 0.12
    max_dup_line_char_fraction: float = 0.10
    short_line_chars: int = 30
    max_short_line_fraction: float = 0.67


class QualitySettings(Section):
    """Rule sets to run, in order (the first failing rule is the reported reason)."""

    rules: list[RuleSet] = Field(default_factory=lambda: list(ALL_RULE_SETS))
    gopher: GopherSettings = Field(default_factory=GopherSettings)
    c4: C4Settings = Field(default_factory=C4Settings)
    fineweb: FineWebSettings = Field(default_factory=FineWebSettings)


class CurateSettings(Section):
    """The whole pipeline: steps in order, input fields, limits and each step's settings."""

    steps: list[StepName] = Field(default_factory=lambda: list(ALL_STEPS))
    text_field: str = "text"
    id_field: str = "id"
    # Documents above this are counted as bad input (too large), not processed.
    max_doc_bytes: int = Field(5_000_000, ge=1)
    # Tokens are estimated from UTF-8 bytes: ~4 bytes per token for English BPE tokenisers (GPT-2/Llama family).
    bytes_per_token: float = Field(4.0, gt=0)
    normalize: NormalizeSettings = Field(default_factory=NormalizeSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    language: LanguageSettings = Field(default_factory=LanguageSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    # Passed to truecost.curate.dedup as keyword arguments (that module documents them).
    exact: dict[str, Any] = Field(default_factory=dict)
    near: dict[str, Any] = Field(default_factory=dict)
    dedup_index_dir: Path | None = None

    @field_validator("exact")
    @classmethod
    def _no_exact_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:  # nothing reads them: a key here was silently ignored
            raise ValueError(f"exact dedup takes no parameters, got {sorted(value)}")
        return value

    @field_validator("near")
    @classmethod
    def _near_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Checked when the recipe is read: a typo was a TypeError traceback once the near stage started."""
        import dataclasses

        from truecost.curate.dedup import NearDedupParams

        known = {f.name for f in dataclasses.fields(NearDedupParams)}
        unknown = sorted(set(value) - known - {"update_index"})
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; choose from {sorted(known | {'update_index'})}")
        NearDedupParams(**{k: v for k, v in value.items() if k != "update_index"})  # its own range checks
        return value


def settings_from_dict(data: dict[str, Any], source: str) -> CurateSettings:
    """Validate a `[curate]`-shaped dict; a mistake becomes one line naming the field."""
    try:
        return CurateSettings.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, source)) from exc


def load_recipe(path: Path, base: dict[str, Any] | None = None) -> CurateSettings:
    """Read a recipe (TOML or JSON; keys as in `[curate]`, optionally under a `[curate]` table) over `base`."""
    if path.is_dir():
        raise UserError(f"recipe {path} is a folder; give the recipe file (TOML or JSON) inside it")
    if not path.is_file():
        raise UserError(f"recipe file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: not a valid recipe ({exc})") from exc
    if isinstance(data.get("curate"), dict):
        data = data["curate"]
    merged = {**(base or {}), **data}
    return settings_from_dict(merged, str(path))
