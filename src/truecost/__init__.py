"""truecost: the true cost of building and running a large language model, and how to cut it."""

__version__ = "0.1.0"
