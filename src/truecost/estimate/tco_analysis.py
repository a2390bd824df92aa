"""What carries the TCO headline: its split by input and basis (Shapley values) and its sensitivity to each
assumption (the tornado chart). Pure functions over the inputs of `truecost.estimate.tco`.

Attribution. The headline is D = total(poor) - total(well). Only inputs whose two values differ can carry it; they
are the players. v(S) is the difference when the inputs in S take their poor value and every other input its well
value, so v(empty) = 0 and v(all) = D. Each input's share is its exact Shapley value (the mean of its marginal
contribution over every order of switching), so the shares add up to D exactly, interactions (say the bad-output
rate times the minutes per fix) are split fairly, and no order has to be chosen. An input's share counts under its
`effect_basis`: measured only when both of its values were measured. Inputs equal in both projects (prices, wages)
scale the effects without carrying any: their weight shows in the sensitivity analysis instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import factorial
from typing import Any

from truecost.estimate.tco import ARMS, BASES, Arm, Basis, Plan, TcoInput, arm_values, project_costs

MAX_PLAYERS = 18  # 2^18 evaluations of a few multiplications: well under a second


def _difference(plan: Plan, poor: Mapping[str, float], well: Mapping[str, float]) -> float:
    return project_costs(poor, plan)["total_usd"] - project_costs(well, plan)["total_usd"]


def attribute(inputs: Mapping[str, TcoInput], plan: Plan) -> tuple[dict[str, float], dict[str, float]]:
    """(Shapley value of each differing input, their sums by effect basis); both add up to the difference."""
    players = [name for name, item in inputs.items() if item.differs]
    n = len(players)
    if n > MAX_PLAYERS:
        raise ValueError(f"{n} inputs differ between the projects; exact attribution handles {MAX_PLAYERS}")
    well, poor = arm_values(inputs, "well"), arm_values(inputs, "poor")
    well_total = project_costs(well, plan)["total_usd"]
    value = []
    for mask in range(1 << n):
        mixed = dict(well)
        for i, name in enumerate(players):
            if mask >> i & 1:
                mixed[name] = poor[name]
        value.append(project_costs(mixed, plan)["total_usd"] - well_total)
    weight = [factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)]
    shares: dict[str, float] = {}
    for i, name in enumerate(players):
        bit = 1 << i
        shares[name] = sum(weight[mask.bit_count()] * (value[mask | bit] - value[mask])
                           for mask in range(1 << n) if not mask & bit)
    by_basis: dict[str, float] = dict.fromkeys(BASES, 0.0)
    for name, share in shares.items():
        by_basis[inputs[name].effect_basis] += share
    return ({k: round(v, 2) for k, v in sorted(shares.items(), key=lambda kv: -abs(kv[1]))},
            {k: round(v, 2) for k, v in by_basis.items()})


@dataclass(frozen=True)
class SensitivityRow:
    """One assumption (or sourced figure) moved alone across its range, and the headline at each end."""

    name: str  # `input` when both projects share the value, else `arm.input`
    basis: Basis
    value: float
    low: float
    high: float
    difference_at_low: float
    difference_at_high: float

    @property
    def swing(self) -> float:
        """How far the headline moves across the range."""
        return abs(self.difference_at_high - self.difference_at_low)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "basis": self.basis, "value": self.value, "low": self.low, "high": self.high,
                "difference_at_low": round(self.difference_at_low, 2),
                "difference_at_high": round(self.difference_at_high, 2), "swing": round(self.swing, 2)}


def knobs(inputs: Mapping[str, TcoInput]) -> list[tuple[str, str, tuple[Arm, ...]]]:
    """(label, input, projects) for every value with a stated range (an assumption's, a sourced figure's, or a
    measurement's 95% interval); a value both projects share (same figure, same source) is one knob moving both."""
    out: list[tuple[str, str, tuple[Arm, ...]]] = []
    for name, item in inputs.items():
        free = [arm for arm in ARMS if item.arm(arm).low is not None and item.arm(arm).high is not None
                and item.arm(arm).low != item.arm(arm).high]
        if len(free) == 2 and item.well == item.poor:
            out.append((name, name, ARMS))
        else:
            out.extend((f"{arm}.{name}", name, (arm,)) for arm in free)
    return out


def _with(values: dict[Arm, dict[str, float]], name: str, arms: tuple[Arm, ...], x: float
          ) -> dict[Arm, dict[str, float]]:
    return {arm: ({**v, name: x} if arm in arms else v) for arm, v in values.items()}


def sensitivity(inputs: Mapping[str, TcoInput], plan: Plan) -> tuple[list[SensitivityRow], tuple[float, float]]:
    """Rows sorted by swing, and the range of the headline with every assumed or sourced knob at the end that
    lowers (raises) it; a measured value's interval gets its own row but stays put in that range."""
    values: dict[Arm, dict[str, float]] = {arm: arm_values(inputs, arm) for arm in ARMS}
    headline = _difference(plan, values["poor"], values["well"])
    rows, lows, highs = [], dict(values), dict(values)
    for label, name, arms in knobs(inputs):
        ref = inputs[name].arm(arms[0])
        assert ref.low is not None and ref.high is not None
        ends = []
        for x in (ref.low, ref.high):
            moved = _with(values, name, arms, x)
            ends.append(_difference(plan, moved["poor"], moved["well"]))
        rows.append(SensitivityRow(label, ref.basis, ref.value, ref.low, ref.high, ends[0], ends[1]))
        if ref.basis == "measured":
            continue
        down, up = (ref.low, ref.high) if ends[0] <= ends[1] else (ref.high, ref.low)
        lows, highs = _with(lows, name, arms, down), _with(highs, name, arms, up)
    joint_low = _difference(plan, lows["poor"], lows["well"])
    joint_high = _difference(plan, highs["poor"], highs["well"])
    rows.sort(key=lambda r: -r.swing)
    return rows, (round(min(joint_low, headline), 2), round(max(joint_high, headline), 2))
