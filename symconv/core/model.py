"""The symbolic cost model: one class for Conv1d/2d/3d and ConvTranspose1d/2d/3d.

Quantities are written once here, in the pages' own terms (output sizes as
symbols ``H_out``…, the docs' ``additions_per_filter`` as a symbol, per-axis
count-map sums ``S_H``, ``Z_H``…). :meth:`CostModel.resolve` replaces those
symbols by their formulas (output sizes) and by the overlap engine's hybrid
expressions, giving a closed expression in the layer's parameters only. LaTeX
and numeric functions are generated from these expressions, never retyped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sympy as sp

from . import overlap
from .conventions import Convention, get_convention
from .errors import SymconvError, require_bool
from .names import LAYER_KINDS, canonical_kind
from .symbols import Axis, C_in, C_out, N, additions_per_filter, groups, make_axis

if TYPE_CHECKING:
    from ..numeric.compile import NumericFunction

QUANTITIES = ("output_size", "psi", "multiplications", "additions", "lambda", "gamma", "total", "summary",
              "S", "Z")


class CostModel:
    """The cost of one kind of convolution layer, symbolic in all its parameters."""

    def __init__(self, kind: str, *, asymmetric: bool = False) -> None:
        self.kind = canonical_kind(kind)
        self.ndim, self.transposed = LAYER_KINDS[self.kind]
        self.asymmetric = asymmetric and not self.transposed
        self.axes: tuple[Axis, ...] = tuple(make_axis(a, self.ndim, self.asymmetric) for a in range(self.ndim))

    def __repr__(self) -> str:
        return f"CostModel({self.kind!r})"

    # --- shapes -------------------------------------------------------------------------

    def output_size(self, axis: int = 0) -> sp.Expr:
        """torch's output length of one axis, in the input size and the layer's parameters."""
        a = self.axes[axis]
        if self.transposed:
            return (a.L - 1) * a.s - a.p - a.pr + a.d * (a.k - 1) + a.op + 1
        return sp.floor((a.L + a.p + a.pr - a.d * (a.k - 1) - 1) / a.s) + 1

    @property
    def out_elements(self) -> sp.Expr:
        return sp.Mul(*(a.L_out for a in self.axes))

    @property
    def in_elements(self) -> sp.Expr:
        return sp.Mul(*(a.L for a in self.axes))

    @property
    def kernel_elements(self) -> sp.Expr:
        return sp.Mul(*(a.k for a in self.axes))

    @property
    def sum_elements(self) -> sp.Expr:
        """ΠS: products of one filter that land in the output."""
        return sp.Mul(*(a.S for a in self.axes))

    @property
    def reached_elements(self) -> sp.Expr:
        """ΠZ: output elements of one filter that receive at least one product."""
        return sp.Mul(*(a.Z for a in self.axes))

    # --- the pages' quantities ----------------------------------------------------------

    @property
    def psi(self) -> sp.Expr:
        """ψ, the number of filters: C_in·C_out/groups."""
        return C_in * C_out / groups

    def multiplications(self, convention: str | Convention = "docs") -> sp.Expr:
        return get_convention(convention).multiplications(self)

    def additions(self, convention: str | Convention = "docs") -> sp.Expr:
        return get_convention(convention).additions(self)

    def lam(self, convention: str | Convention = "docs") -> sp.Expr:
        """λ, operations per filter: multiplications + additions."""
        return self.multiplications(convention) + self.additions(convention)

    def gamma(self, bias: bool = True, convention: str | Convention = "docs") -> sp.Expr:
        """γ, the additions that aggregate filters into output channels (and the bias)."""
        return get_convention(convention).aggregation(self, require_bool("bias", bias))

    def total(self, bias: bool = True, convention: str | Convention = "docs") -> sp.Expr:
        """N·(ψ·λ + γ)."""
        return N * (self.psi * self.lam(convention) + self.gamma(bias, convention))

    def summary(self, bias: bool = True) -> sp.Expr:
        """The docs pages' simplified total (docs convention), kept apart to be proven equal to total()."""
        K, out = self.kernel_elements, self.out_elements
        require_bool("bias", bias)
        if self.transposed:
            with_bias = N * C_in * C_out / groups * (out * (K + 1) + additions_per_filter)
            return with_bias if bias else with_bias - N * C_out * out
        if bias:
            return N * (C_in * C_out * out * 2 * K / groups)
        return N * (C_out * out * (C_in * 2 * K - groups) / groups)

    # --- resolution ------------------------------------------------------------------------

    _STAGES = ("additions", "counts", "sizes")

    @lru_cache(maxsize=None)
    def _stage(self, name: str) -> dict[sp.Symbol, sp.Expr]:
        """One substitution, built on first use (the count hybrids are the costly one)."""
        if name == "additions":
            return {additions_per_filter: self.sum_elements - self.out_elements}
        if name == "counts":
            counts: dict[sp.Symbol, sp.Expr] = {}
            for a in self.axes:
                counts[a.S] = overlap.hybrid_s(a, self.transposed)
                counts[a.Z] = overlap.hybrid_z(a, self.transposed)
            return counts
        return {a.L_out: self.output_size(a.index) for a in self.axes}

    def resolve(self, expr: sp.Expr, through: str = "sizes") -> sp.Expr:
        """Replace placeholders by their exact expressions, stage by stage.

        ``through="additions"`` replaces only additions_per_filter (by ΠS - ΠL_out);
        ``"counts"`` also S and Z (by the overlap engine's hybrids); ``"sizes"``
        (default) also the output sizes, leaving the layer's parameters only.
        Each stage may introduce symbols of the later ones, never of earlier ones.
        """
        if through not in self._STAGES:
            raise SymconvError(f"through={through!r} must be one of {', '.join(self._STAGES)}")
        expr = sp.sympify(expr)
        for name in self._STAGES[:self._STAGES.index(through) + 1]:
            expr = expr.xreplace(self._stage(name))
        return expr

    def quantity(self, name: str, *, convention: str | Convention = "docs", bias: bool = True,
                 axis: int = 0, resolved: bool = False) -> sp.Expr:
        """Any quantity by name (see QUANTITIES); ``resolved`` expresses it in the parameters only."""
        builders: dict[str, Any] = {
            "output_size": lambda: self.output_size(axis),
            "psi": lambda: self.psi,
            "multiplications": lambda: self.multiplications(convention),
            "additions": lambda: self.additions(convention),
            "lambda": lambda: self.lam(convention),
            "gamma": lambda: self.gamma(bias, convention),
            "total": lambda: self.total(bias, convention),
            "summary": lambda: self.summary(bias),
            "S": lambda: self.axes[axis].S,
            "Z": lambda: self.axes[axis].Z,
        }
        if name not in builders:
            raise SymconvError(f"quantity={name!r} must be one of {', '.join(QUANTITIES)}")
        if name in ("output_size", "S", "Z") and not 0 <= axis < self.ndim:
            raise SymconvError(f"axis={axis} must be in 0..{self.ndim - 1} for {self.kind}")
        expr = builders[name]()
        return self.resolve(expr) if resolved else expr

    def axis_parameters(self, axis: int = 0) -> tuple[sp.Symbol, ...]:
        """The parameters of one axis: input size, kernel, stride, padding(s), dilation, output_padding."""
        a = self.axes[axis]
        names = ["L", "k", "s", "p"] + (["pr"] if self.asymmetric else []) + ["d"] + (["op"] if self.transposed else [])
        return tuple(getattr(a, n) for n in names)

    def parameters(self) -> tuple[sp.Symbol, ...]:
        """The free parameters of a resolved quantity, in a fixed order."""
        per_axis = zip(*(self.axis_parameters(a) for a in range(self.ndim)))
        return (N, C_in, C_out, groups, *(s for field in per_axis for s in field))

    def count_parameters(self) -> tuple[sp.Symbol, ...]:
        """The symbols of a quantity resolved ``through="additions"``: channels and per-axis counts."""
        per_axis = [s for a in self.axes for s in (a.L, a.L_out, a.k, a.S, a.Z)]
        return (N, C_in, C_out, groups, *per_axis)

    # --- generated artefacts ---------------------------------------------------------------

    def latex(self, name: str, **options: Any) -> str:
        """The quantity in the pages' LaTeX notation (see :func:`symconv.core.latex.to_latex`)."""
        from .latex import to_latex
        return to_latex(self.quantity(name, **options))

    def lambdify(self, name: str, **options: Any) -> "NumericFunction":
        """An exact, vectorised numpy function of the layer's parameters (keywords by symbol name).

        Built once per quantity and options (resolving a hybrid takes seconds); the
        function holds no state a call could change.
        """
        return self._lambdified(name, tuple(sorted(options.items())))

    @lru_cache(maxsize=None)
    def _lambdified(self, name: str, options: tuple[tuple[str, Any], ...]) -> "NumericFunction":
        from ..numeric.compile import compile_expr  # numpy, loaded only when asked for
        from ..numeric.kernels import row_kernel
        from ..numeric.validator import layer_validator
        expr = self.quantity(name, resolved=True, **dict(options))
        return compile_expr(expr, self.parameters(), layer_validator(self), row_kernel(self, name, **dict(options)))


@lru_cache(maxsize=None)
def cost_model(kind: str, *, asymmetric: bool = False) -> CostModel:
    """The symbolic cost model of a layer kind, e.g. ``cost_model("ConvTranspose2d")`` (case-insensitive)."""
    return CostModel(kind, asymmetric=asymmetric)
