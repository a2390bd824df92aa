"""Synth checks where it will write before it pays for a single request, and never loses what it paid for.

Each case failed on the code before this fix: an output path that was a file, or under a file, was found only after
every request had been sent and paid for (the generations were then thrown away; under a file: a traceback); an
infinite `--price-in` turned every cost into NaN, which the ledger refused with a traceback after the run.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.synth.fake_openai import serve
from truecost.errors import UserError
from truecost.ledger import Ledger
from truecost.synth import make_settings, run_synth


def _settings(url: str, seed_docs: Path, **extra: object) -> object:
    return make_settings(generator=f"openai:{url}#m", seeds=[str(seed_docs)], price_in_usd_per_1m=1.0,
                         price_out_usd_per_1m=2.0, **extra)


def test_an_unwritable_output_is_refused_before_any_request(tmp_path: Path, seed_docs: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("keep me", encoding="utf-8")
    with serve() as (url, state):
        for out, message in ((a_file, "exists and is not a folder"), (a_file / "sub", "cannot write there")):
            with pytest.raises(UserError, match=message):
                run_synth(_settings(url, seed_docs), out_dir=out, ledger=Ledger())  # type: ignore[arg-type]
        assert state.requests == 0
    assert a_file.read_text(encoding="utf-8") == "keep me"
    assert Ledger().list_runs(kind="synth") == []  # nothing was started, so nothing was spent


def test_a_failed_write_keeps_the_spend_in_the_ledger(tmp_path: Path, seed_docs: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import truecost.synth.report as report

    def disk_full(*_args: object, **_info: object) -> None:  # no full disk here: raise what writing to one would
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "atomic_output_dir", disk_full)
    with serve() as (url, state), pytest.raises(UserError, match="No space left on device"):
        run_synth(_settings(url, seed_docs), out_dir=tmp_path / "out", ledger=Ledger())  # type: ignore[arg-type]
    assert state.requests == 6
    run = Ledger().list_runs(kind="synth")[0]
    assert run.status == "failed" and run.results["api_usd"] > 0 and run.cost_usd >= run.results["api_usd"]


@pytest.mark.parametrize("field", ["price_in_usd_per_1m", "price_out_usd_per_1m", "max_usd", "timeout_s"])
def test_infinite_prices_caps_and_timeouts_are_refused(seed_docs: Path, field: str) -> None:
    with pytest.raises(UserError, match=f"{field}: Input should be a finite number"):
        make_settings(generator="openai:http://127.0.0.1:9/v1#m", seeds=[str(seed_docs)], **{field: float("inf")})


def test_seed_files_with_a_byte_order_mark_are_read(tmp_path: Path, seed_docs: Path) -> None:
    from truecost.synth.seeds import load_seeds

    text = seed_docs.read_text(encoding="utf-8")
    (tmp_path / "bom.jsonl").write_text(text, encoding="utf-8-sig")
    (tmp_path / "bom.txt").write_text("A plain text seed about caching pages in memory.", encoding="utf-8-sig")
    plain = load_seeds([str(seed_docs)], task="qa")
    marked = load_seeds([str(tmp_path / "bom.jsonl")], task="qa")
    assert [r.text for r in marked] == [r.text for r in plain]
    assert load_seeds([str(tmp_path / "bom.txt")], task="qa")[0].text.startswith("A plain")


def test_a_folder_synth_did_not_write_is_never_replaced(tmp_path: Path, seed_docs: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before this fix: `truecost synth mydocs -o mydocs` deleted the user's folder (seeds and all) and put
    the output in its place; `-o .` raised a ValueError traceback after every request was paid for."""
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    seeds = mydocs / "seeds.jsonl"
    seeds.write_text(seed_docs.read_text(encoding="utf-8"), encoding="utf-8")
    (mydocs / "notes.txt").write_text("my notes", encoding="utf-8")
    with serve() as (url, state):
        with pytest.raises(UserError, match="holds files that truecost synth did not write"):
            run_synth(_settings(url, mydocs), out_dir=mydocs)  # type: ignore[arg-type]
        monkeypatch.chdir(mydocs)
        for out in (Path("."), Path("..")):
            with pytest.raises(UserError, match="working folder or above it"):
                run_synth(_settings(url, mydocs), out_dir=out)  # type: ignore[arg-type]
        assert state.requests == 0
        assert sorted(p.name for p in mydocs.iterdir()) == ["notes.txt", "seeds.jsonl"]
        # An earlier synth output is replaced, as documented.
        again = tmp_path / "synth-out"
        for _ in range(2):
            run_synth(_settings(url, seeds), out_dir=again)  # type: ignore[arg-type]
        assert (again / "kept" / "examples.jsonl").is_file() and (mydocs / "notes.txt").is_file()
