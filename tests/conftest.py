"""Shared fixtures: an isolated ledger per test, and a real PostgreSQL server for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory with its own default ledger; no test sees the user's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRUECOST_LEDGER", raising=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a real PostgreSQL server: $TRUECOST_TEST_POSTGRES_URL, or one started for this session.

    Locally a missing server skips these tests; in CI (CI=true) it is an error, since .ci/run installs one.
    """
    url = os.environ.get("TRUECOST_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.pg import PostgresServer

    server = PostgresServer()
    try:
        url = server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start means "no server here"
        server.stop()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not be started in CI: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url
    finally:
        server.stop()


def _shared_data_missing(where: Path) -> str:
    return (f"shared data not found at {where}: clone the team's shared folder beside this checkout "
            "(see README, 'Shared data')")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's shared data folder (`../shared/data` beside the checkout). Locally a missing folder skips the
    tests that read it; in CI (CI=true) it fails them, since the accuracy figures the README quotes rest on them."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(_shared_data_missing(SHARED_DATA))
        pytest.skip(_shared_data_missing(SHARED_DATA))
    return SHARED_DATA
