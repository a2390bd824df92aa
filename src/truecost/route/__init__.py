"""route: learned cost-aware routing between LLMs (which model should answer this prompt?).

    from truecost.route import load_router
    router = load_router("routers/knn")            # saved by `truecost route fit --out routers/knn`
    decision = router.route("What is 2+2?", knob=0.5)   # argmax(expected quality - knob * normalised cost)
    decision.model, decision.score, decision.expected_quality

Two models: `router.knob_for_strong_share(0.3)` gives the knob that sends ~30% of calls to the strong model.
`fit_router` and `evaluate_routers` do what `truecost route fit|eval` do, recorded on a ledger when given one.
"""

from truecost.route.base import RouteDecision, Router, load_router, router_class
from truecost.route.outcomes import OutcomeDataset, read_outcomes, write_outcomes
from truecost.route.runs import FittedRouter, evaluate_routers, fit_router

__all__ = ["FittedRouter", "OutcomeDataset", "RouteDecision", "Router", "evaluate_routers", "fit_router",
           "load_router", "read_outcomes", "router_class", "write_outcomes"]
