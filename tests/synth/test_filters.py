"""The filter chain on examples: curate's normalisation, quality rules and dedup (against the real set too)."""

from __future__ import annotations

from truecost.synth.decontam import EvalItem, EvalSet, NgramIndex
from truecost.synth.files import Row
from truecost.synth.filters import Example, FilterChain, grounding

GOOD_ANSWER = ("The cache keeps the most recently used pages in memory and evicts the oldest page when the memory "
               "budget is exceeded.")


def _ex(i: int, prompt: str, response: str) -> Example:
    return Example(f"synth-{i}", prompt, response, {"seed_id": f"s{i}"})


def test_each_filter_removes_what_it_should_and_counts_it() -> None:
    real = [Row("r1", "How does the parser treat comments in the configuration file?",
                "It skips every line that starts with a hash sign and reports the first malformed line.")]
    examples = [
        _ex(0, "What does the cache do with old pages?", GOOD_ANSWER),                       # kept
        _ex(1, "What does the cache do with old pages?", GOOD_ANSWER.upper()),              # exact copy of 0
        _ex(2, "How does the parser treat comments in the configuration file?",
            "It skips every line that starts with a hash sign and reports the first malformed line."),  # real copy
        _ex(3, "How does the parser treat comments in a configuration file?",
            "It skips each line that starts with a hash sign and reports the first malformed line."),  # near real
        _ex(4, "Why?", "Because."),                                                          # too short
        _ex(5, "\u200b\u00a0 ", "An answer with no question at all, which normalisation leaves empty."),
        _ex(6, "Which worker gets the next job from the scheduler?",
            "The scheduler assigns every incoming job to the least loaded worker and records the decision."),
    ]
    leak = EvalSet("exam", (EvalItem("e7", "the scheduler assigns every incoming job to the least loaded worker and "
                                            "records the decision in the log"),))
    chain = FilterChain(real=real, eval_index=NgramIndex.build([leak]))
    result = chain.run(examples)
    assert [e.id for e in result.kept] == ["synth-0"]
    rules = {r.id: (r.filter, r.rule) for r in result.rejections}
    assert rules == {
        "synth-1": ("exact", "exact_duplicate"),
        "synth-2": ("exact", "exact_duplicate_of_real"),
        "synth-3": ("near", "near_duplicate_of_real"),
        "synth-4": ("quality", "gopher_word_count"),
        "synth-5": ("normalize", "empty_after_normalize"),
        "synth-6": ("decontaminate", "eval_ngram_overlap"),
    }
    leak_record = next(r for r in result.rejections if r.id == "synth-6").to_dict()
    assert leak_record["eval_set"] == "exam" and leak_record["eval_id"] == "e7" and leak_record["n"] == 13
    counts = {c.name: (c.seen, c.kept) for c in result.counts}
    assert counts == {"normalize": (7, 6), "quality": (6, 5), "grounding": (5, 5), "decontaminate": (5, 4),
                      "exact": (4, 2), "near": (2, 1), "judge": (1, 1)}
    near = next(r for r in result.rejections if r.id == "synth-3").to_dict()
    assert near["kept"] == "real:r1" and near["similarity"] >= 0.75


def test_normalisation_rewrites_fields_as_curate_would() -> None:
    from truecost.curate.steps.base import StepStats
    from truecost.curate.steps.normalize import NormalizeStep

    raw = "What  does \u201cevict\u201d mean\u00a0for   the cache?\r\n"
    example = _ex(0, raw, GOOD_ANSWER + "  \n\n\n\n")
    FilterChain().run([example])
    step = NormalizeStep()
    assert example.prompt == step.normalize_text(raw, StepStats("normalize"))
    assert example.prompt.startswith('What  does "evict" mean for') and example.response == GOOD_ANSWER


def test_judge_keeps_scores_at_the_threshold() -> None:
    examples = [_ex(i, f"Question number {i} about the cache and its pages?", GOOD_ANSWER + f" Case {i}.")
                for i in range(4)]
    scores = {"synth-0": (9, None), "synth-1": (6, None), "synth-2": (None, None), "synth-3": (None, "budget")}
    chain = FilterChain(judge=lambda exs: [scores[e.id] for e in exs], judge_threshold=7,
                        settings=None)
    chain.settings.near = {"threshold": 0.99}  # the four differ in one word: not the subject of this test
    result = chain.run(examples)
    assert [e.id for e in result.kept] == ["synth-0"] and result.kept[0].judge_score == 9
    assert {r.id: r.rule for r in result.rejections} == {"synth-1": "judge_below_threshold",
                                                         "synth-2": "judge_no_score", "synth-3": "judge_not_run"}


def test_grounding_keeps_answers_made_of_the_documents_words() -> None:
    doc = ("The cache keeps the most recently used pages in memory and evicts the oldest page when the memory "
           "budget is exceeded by a new page.")
    grounded = _ex(0, "What does the cache evict when memory runs out?", "It evicts the oldest page from memory.")
    invented = _ex(1, "What does the cache evict when memory runs out?",
                   "It compresses every stored record with zstandard before archiving them offsite.")
    for ex in (grounded, invented):
        ex.source = doc
    result = FilterChain().run([grounded, invented])
    assert [e.id for e in result.kept] == ["synth-0"]
    (rejection,) = result.rejections
    # content words of the invented answer: compresses, every, stored, record, zstandard, before, archiving, offsite
    assert (rejection.rule, rejection.detail["value"], rejection.detail["threshold"]) == (
        "answer_not_in_source", 0.0, 0.5)
    assert grounding("It evicts the oldest page.", doc) == 1.0  # evicts, oldest, page: all in the document
