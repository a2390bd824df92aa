"""The ledger's tables at the current schema version: one row per metered run, one per gateway request, and facts
about the store. An older database is brought here by `truecost.ledger.migrations` when it is opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 3  # bump together with a new step in migrations.MIGRATIONS


class Base(DeclarativeBase):
    """Declarative base for the ledger tables."""


class RunRow(Base):
    """A unit of work that spent compute: a curate pass, a training run, a review, a monitor window..."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hardware: Mapped[str] = mapped_column(String(200), default="")
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_hours: Mapped[float] = mapped_column(Float, default=0.0)
    energy_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # v2: who runs it and when it last proved alive, so that a killed process's run can be found and marked lost.
    host: Mapped[str] = mapped_column(String(200), default="", server_default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class RequestRow(Base):
    """One request served through the gateway (the monitor reads these as its live stream)."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    route: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(200), default="", index=True)
    api_key: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="ok")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    router_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # v3: who a request was for (spend and budgets by team, user and tag) and what the response cache saved.
    team: Mapped[str] = mapped_column(String(100), default="", server_default="", index=True)
    user: Mapped[str] = mapped_column(String(200), default="", server_default="", index=True)
    tags: Mapped[str] = mapped_column(String(1000), default="", server_default="")  # ",a,b," (see ledger.budgets)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    saved_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class BudgetCounterRow(Base):
    """v3: one budget's running total for one period, reserved and settled by the gateways (ledger.budgets)."""

    __tablename__ = "budget_counters"

    id: Mapped[str] = mapped_column(String(400), primary_key=True)  # scope:name:period:start-date
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0)


class MetaRow(Base):
    """Key/value facts about the store itself, such as the schema version."""

    __tablename__ = "ledger_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
