"""The steps of a run cut into passes over the corpus. A pass reads every shard once (the input, or the previous
pass's documents), applies the decision of the whole-corpus phase before it (boilerplate lines, dedup removals),
runs per-document steps, and collects what the next whole-corpus phase needs. A final stage writes the kept
documents. Consecutive dedup steps share a pass: exact and near keys are computed together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from truecost.curate.settings import CurateSettings, StepName

DEDUP_STEPS: tuple[StepName, ...] = ("exact", "near")
Apply = Literal["boilerplate", "dedup"] | None


@dataclass(frozen=True)
class Pass:
    """One pass over every shard."""

    index: int
    apply: Apply  # the whole-corpus decision of the previous pass, applied first
    maps: tuple[StepName, ...]  # per-document steps
    dedup: tuple[StepName, ...] = ()  # dedup steps whose keys this pass computes (decided after it)
    boilerplate: bool = False  # this pass counts normalize's lines (decided after it)

    @property
    def prefix(self) -> str:
        return f"pass{self.index}"


@dataclass(frozen=True)
class Plan:
    """The passes, and what the final stage applies before writing."""

    passes: tuple[Pass, ...]
    final_apply: Apply = None

    def full_text(self, index: int) -> bool:
        """Whether pass `index` must write every text (a later pass reads it), or only changed ones."""
        return index + 1 < len(self.passes)


@dataclass
class _Building:
    index: int
    apply: Apply
    maps: list[StepName] = field(default_factory=list)
    dedup: list[StepName] = field(default_factory=list)

    def freeze(self, boilerplate: bool = False) -> Pass:
        return Pass(self.index, self.apply, tuple(self.maps), tuple(self.dedup), boilerplate)


def make_plan(settings: CurateSettings) -> Plan:
    """Passes for the settings' steps, in their order."""
    passes: list[Pass] = []
    cur = _Building(0, None)
    for step in settings.steps:
        if step in DEDUP_STEPS:
            cur.dedup.append(step)
            continue
        if cur.dedup:  # a per-document step after dedup keys: decide dedup first, in a new pass
            passes.append(cur.freeze())
            cur = _Building(len(passes), "dedup")
        cur.maps.append(step)
        if step == "normalize" and settings.normalize.boilerplate:
            passes.append(cur.freeze(boilerplate=True))
            cur = _Building(len(passes), "boilerplate")
    if cur.maps or cur.dedup or cur.apply or not passes:
        passes.append(cur.freeze())
    return Plan(tuple(passes), "dedup" if passes[-1].dedup else None)
