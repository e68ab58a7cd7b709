"""The symbolic core: SymPy and the standard library only.

Nothing here imports numpy or torch at module level, and this file imports
nothing, so that the plain-data modules (``errors``, ``names``, ``counters``)
load without SymPy for the fast numeric paths.
"""
