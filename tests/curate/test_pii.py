"""PII: Luhn and IBAN checks against published valid/invalid numbers, detection, and consistent placeholders."""

from __future__ import annotations

import pytest

from truecost.curate.settings import PiiSettings
from truecost.curate.steps.base import StepStats
from truecost.curate.steps.pii import PiiStep, iban_valid, luhn_valid
from truecost.pii import find_pii

# Test card numbers published by payment networks / processors (Stripe and PayPal test-card lists).
VALID_CARDS = ["4111111111111111", "4242424242424242", "5555555555554444", "378282246310005", "6011111111111117",
               "3530111333300000", "79927398713"]
# The same numbers with the last digit changed: each breaks the Luhn sum.
INVALID_CARDS = ["4111111111111112", "4242424242424241", "5555555555554440", "378282246310006", "79927398710"]
# IBAN examples from the SWIFT IBAN registry / ECBS examples.
VALID_IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606",
               "NL91ABNA0417164300", "BE68539007547034", "CH9300762011623852957"]
INVALID_IBANS = ["GB82 WEST 1234 5698 7654 33", "DE89370400440532013001", "NL91ABNA0417164301",
                 "GB82WEST123456987654", "XX00"]


@pytest.mark.parametrize("number", VALID_CARDS)
def test_luhn_accepts_valid(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", INVALID_CARDS)
def test_luhn_rejects_invalid(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_iban_accepts_valid(iban: str) -> None:
    assert iban_valid(iban)


@pytest.mark.parametrize("iban", INVALID_IBANS)
def test_iban_rejects_invalid(iban: str) -> None:
    assert not iban_valid(iban)


def scrub(text: str, **kw: object) -> tuple[str, StepStats]:
    stats = StepStats("pii")
    out, _ = PiiStep(PiiSettings(**kw)).scrub(text, stats)  # type: ignore[arg-type]
    return out, stats


def test_each_kind_is_replaced_and_counted() -> None:
    text = ("Write to ana.lopez@example.org or call +1 555-123-4567. "
            "The host is 10.0.0.12 (also fe80::1ff:fe23:4567:890a). "
            "Pay with 4111 1111 1111 1111 into GB82 WEST 1234 5698 7654 32. key AKIAIOSFODNN7EXAMPLE")
    out, stats = scrub(text)
    assert out == ("Write to <EMAIL_1> or call <PHONE_1>. "
                   "The host is <IP_ADDRESS_1> (also <IP_ADDRESS_2>). "
                   "Pay with <CREDIT_CARD_1> into <IBAN_1>. key <SECRET_1>")
    assert dict(stats.changes) == {"email": 1, "phone": 1, "ip": 2, "credit_card": 1, "iban": 1, "secret": 1}


def test_same_value_same_placeholder() -> None:
    out, stats = scrub("a@example.com, b@example.com, a@example.com")
    assert out == "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>"
    assert stats.changes["email"] == 3
    out, _ = scrub("a@example.com, b@example.com", placeholder="plain")
    assert out == "<EMAIL>, <EMAIL>"


def test_invalid_numbers_and_look_alikes_are_left_alone() -> None:
    text = ("Card 4111 1111 1111 1112 fails Luhn. Released 2024-01-15, version 1.2.3, years 1999 2000 2001, "
            "at 12:30:45 with std::map and GB82 WEST 1234 5698 7654 33.")
    out, stats = scrub(text)
    assert out == text
    assert not stats.changes


def test_secret_assignment_keeps_the_key_name() -> None:
    out, _ = scrub('config: api_key = "Zx81kLmn0pQrStUv99"\nGITHUB ghp_abcdefghijklmnopqrstuvwxyz0123456789')
    # Numbers follow the order in the text.
    assert out == 'config: api_key = "<SECRET_1>"\nGITHUB <SECRET_2>'


def test_kinds_can_be_chosen() -> None:
    out, _ = scrub("a@example.com 10.1.2.3", kinds=["ip"])
    assert out == "a@example.com <IP_ADDRESS_1>"


def test_shared_module_finds_spans_without_overlaps() -> None:
    """`truecost.pii` (standard library only) is what curate scrubs with; spans index the original text."""
    text = "SSN 123-45-6789, mail ana@example.org, key AKIAIOSFODNN7EXAMPLE, not 000-12-3456 nor 666-12-3456."
    found = find_pii(text)
    assert [(m.kind, m.value) for m in found] == [("us_ssn", "123-45-6789"), ("email", "ana@example.org"),
                                                  ("secret", "AKIAIOSFODNN7EXAMPLE")]
    assert all(text[m.start:m.end] == m.value for m in found)
    assert [m.kind for m in find_pii(text, kinds=["email"])] == ["email"]
    with pytest.raises(ValueError, match="unknown PII kind"):
        find_pii(text, kinds=["shoe_size"])
    # A secret assignment's value is the match, so the key name stays; overlapping kinds never both count.
    assigned = find_pii("password = 4111111111111111abcdef")
    assert [(m.kind, m.value) for m in assigned] == [("secret", "4111111111111111abcdef")]


def test_shared_module_imports_without_curate_extras() -> None:
    import subprocess
    import sys

    code = ("import sys; import truecost.pii as p; "
            "assert not {'numpy', 'pyarrow', 'ftfy', 'pydantic'} & set(sys.modules), sorted(sys.modules); "
            "print(len(p.find_pii('x@example.com')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
