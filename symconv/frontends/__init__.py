"""Front ends: the command line, the docs checker, derivations, explanations and example models."""
