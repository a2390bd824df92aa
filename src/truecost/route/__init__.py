"""route: learned cost-aware routing between LLMs (which model should answer this prompt?).

    from truecost.route import load_router
    router = load_router("routers/knn")            # saved by `truecost route fit --out routers/knn`
    decision = router.route("What is 2+2?", knob=0.5)   # argmax(expected quality - knob * normalised cost)
    decision.model, decision.score, decision.expected_quality

Two models: `router.knob_for_strong_share(0.3)` gives the knob that sends ~30% of calls to the strong model.
"""

from truecost.route.base import RouteDecision, Router, load_router, router_class
from truecost.route.outcomes import OutcomeDataset, read_outcomes, write_outcomes

__all__ = ["OutcomeDataset", "RouteDecision", "Router", "load_router", "read_outcomes", "router_class",
           "write_outcomes"]
