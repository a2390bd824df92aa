"""The demo's curation recipe keeps real content: at most 2% of real documents lost on the default-size corpus."""

from __future__ import annotations

import random

import pytest

from truecost.config import Config
from truecost.curate.document import Document
from truecost.curate.pipeline import run_curate
from truecost.curate.settings import CurateSettings
from truecost.demo.corpus import split_by_domain, stdlib_documents
from truecost.demo.defects import BOILERPLATE_LINES, make_poor_copy
from truecost.demo.pipeline import DEMO_RECIPE, SCALES, SHIFTED_DOMAINS, defect_outcomes

pytestmark = pytest.mark.slow


def test_recipe_loses_at_most_two_percent_of_real_documents(tmp_path) -> None:
    docs = stdlib_documents(min_words=50)
    in_domain, _ = split_by_domain(docs, set(SHIFTED_DOMAINS))
    random.Random(0).shuffle(in_domain)
    clean = in_domain[:SCALES["small"].clean_docs]
    poor = make_poor_copy(clean, seed=0)
    run = run_curate([], CurateSettings.model_validate(DEMO_RECIPE), output_dir=tmp_path / "curated",
                     docs=[Document(d.id, d.text, {}) for d in poor.docs], config=Config())
    outcome = defect_outcomes(poor, run.removals, run.result.kept)
    assert outcome["content_docs"] == len(clean)
    assert outcome["content_lost_share"] <= 0.02, outcome["content_docs_lost_by_rule"]
    # ... while it still removes what was injected: the copies and the junk.
    assert outcome["copies_left"] <= 0.05 * outcome["copies_injected"]
    assert outcome["junk_removed"] >= 0.9 * outcome["junk_injected"]
    # ... and the injected boilerplate lines (the demo's recipe runs no step after the one that strips them).
    assert not any(line in d.text for d in run.result.kept for line in BOILERPLATE_LINES)
