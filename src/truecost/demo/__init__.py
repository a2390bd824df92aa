"""demo: the true cost of a well- vs a poorly-prepared model, measured end to end on this machine."""
