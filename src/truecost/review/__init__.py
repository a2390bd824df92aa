"""review: performance, bias and security review of a local model or an OpenAI-compatible endpoint, with
bootstrap intervals, baseline regressions for CI, an HTML report and the review's own cost in the ledger.

    from truecost.review import run_review
    result = run_review("hf:./my-model", ["performance", "security"], out_dir="review-out", max_requests=200)
    result.to_dict()["metrics"]
"""

from truecost.review.results import Metric, SuiteResult
from truecost.review.runner import SUITES, ReviewResult, resolve_data, run_review
from truecost.review.targets import Generation, Target, parse_target

__all__ = ["SUITES", "Generation", "Metric", "ReviewResult", "SuiteResult", "Target", "parse_target",
           "resolve_data", "run_review"]
