"""Exact numbers from the symbolic core: generated pure Python, numpy and compiled C.

The scalar path (:mod:`.layer`, :mod:`.layer_counts`) runs code generated from the
core (``_scalar_generated.py``) and the C extension; it loads neither SymPy nor
numpy. The vectorised path (:mod:`.compile`, :mod:`.vector_counters`,
:mod:`.validator`) compiles SymPy expressions to numpy on demand.
"""
