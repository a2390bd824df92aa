"""curate: normalize, PII-scrub, language-filter, quality-filter and de-duplicate training text, and say what it saved.

Python API (everything the CLI does):

    from truecost.curate import CurateSettings, run_curate
    run = run_curate([Path("data.jsonl")], CurateSettings(steps=["quality", "near"]), output_dir=Path("out"))
    run.result.kept, run.removals, run.duplicates(), run.report()

Steps share one contract (`truecost.curate.steps.base.Step`) and one tokenisation (`Document.words`).
Heavy modules (numpy, ftfy, py3langid, ray) load only when a step that needs them runs.
"""

from __future__ import annotations

from typing import Any

# Lazy exports: `import truecost.curate.dedup` (and the CLI's --help) must not pay for pydantic and the pipeline.
_EXPORTS = {
    "Document": "truecost.curate.document", "split_words": "truecost.curate.document",
    "CurateRun": "truecost.curate.pipeline", "build_steps": "truecost.curate.pipeline",
    "run_curate": "truecost.curate.pipeline", "ALL_STEPS": "truecost.curate.settings",
    "CurateSettings": "truecost.curate.settings", "load_recipe": "truecost.curate.settings",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'truecost.curate' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
