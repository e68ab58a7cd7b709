"""Products with a sparse factor: the exact convention counts the products of the elements it stores.

The oracle is a ones-product, as for convolutions: with P the factor's pattern (1 where
it stores an element, coalesced) and the other factor all ones, each output of P·1 (or
1·P) is the number of products that output sums, r; an output sums them with r − 1
additions, plus one for a bias where r ≥ 1. docs and macs read the shapes, dense or not.
"""

from __future__ import annotations

import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from torch import nn

import symconv
from symconv.core import matmul
from symconv.numeric.layer_counts import count_sparse_matmul

pytestmark = pytest.mark.filterwarnings("ignore:Sparse")  # torch's notes on its sparse support


def pattern(rows: int, columns: int, seed: int, empty_row: bool = True) -> torch.Tensor:
    """A random 0/1 pattern, an empty row and an empty column among them (unless ``empty_row`` is False)."""
    generator = torch.Generator().manual_seed(seed)
    p = (torch.rand(rows, columns, generator=generator) < 0.4).float()
    if empty_row:
        p[rows // 2] = 0
        p[:, columns // 2] = 0
    p[0, 0] = 1  # never all empty
    return p


def ones_oracle(p: torch.Tensor, other: int, left: bool, bias: bool) -> dict[str, int]:
    """Operations of a product with the sparse factor of pattern p, counted from a ones-product."""
    m, k = p.shape if left else (other, p.shape[0])
    n = other if left else p.shape[1]
    reach = p @ torch.ones(k, n) if left else torch.ones(m, k) @ p  # products each output sums
    exact = int(reach.sum() + (reach - 1).clamp(min=0).sum() + (bias * (reach >= 1)).sum())
    return {"exact": exact, "docs": m * n * (2 * k - 1 + bias), "macs": m * k * n}


LAYOUTS = {
    "coo": lambda p: p.to_sparse(),
    "uncoalesced coo": lambda p: torch.sparse_coo_tensor(  # every element stored twice: coalescing sums them
        torch.cat([p.nonzero().T] * 2, dim=1), torch.ones(2 * int(p.sum())), p.shape),
    "csr": lambda p: p.to_sparse_csr(),
    "csc": lambda p: p.to_sparse_csc(),
}


class Holding(nn.Module):
    """A model holding a sparse matrix (a graph's adjacency) and multiplying by it as ``product`` says."""

    def __init__(self, matrix: torch.Tensor, product, as_buffer: bool) -> None:
        super().__init__()
        if as_buffer:
            self.register_buffer("matrix", matrix)
        else:
            self.matrix = matrix
        self.product = product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.product(self.matrix, x)


PRODUCTS = {  # (the product of the held matrix A (5×4) and the input, whether A is the left factor, bias)
    "torch.sparse.mm": (lambda a, x: torch.sparse.mm(a, x), True, False),
    "torch.mm": (torch.mm, True, False),
    "@": (lambda a, x: a @ x, True, False),
    "addmm": (lambda a, x: torch.addmm(torch.ones(5, x.shape[1]), a, x), True, True),
    "torch.sparse.addmm": (lambda a, x: torch.sparse.addmm(torch.ones(5, x.shape[1]), a, x), True, True),
    "dense @ sparse": (lambda a, x: x.T @ a, False, False),
}


def test_the_stored_formula_is_the_dense_one_on_a_full_factor():
    for bias in (True, False):
        full = matmul.sparse_matmul_total(bias).subs({matmul.stored: matmul.rows * matmul.inner,
                                                       matmul.lines: matmul.rows, matmul.per_line: matmul.columns})
        assert sp.expand(full - matmul.matmul_total(bias, "exact")) == 0
        assert count_sparse_matmul(7, 3, 5, bias) == matmul.sparse_matmul_total(bias).subs(
            {matmul.stored: 7, matmul.lines: 3, matmul.per_line: 5})


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("seed", range(3))
def test_a_product_with_a_sparse_factor_counts_its_stored_elements(layout, name, seed):
    product, left, bias = PRODUCTS[name]
    p = pattern(5, 4, seed)
    x = torch.randn(4, 3) if left else torch.randn(5, 3)
    model = Holding(LAYOUTS[layout](p), product, as_buffer=seed % 2 == 0)
    result = symconv.profile(model, x, "exact", all_conventions=True)
    expected = ones_oracle(p, 3, left, bias)
    assert {c: result.total(c) for c in expected} == expected
    assert result.run == "real values"
    (record,) = result.counted
    assert record.counted.what.startswith("sparse ") and f"stores {int(p.sum())} elements" in record.counted.note


@pytest.mark.parametrize("layout", LAYOUTS)
def test_matrix_vector_and_a_sparse_input_to_linear(layout):
    p = pattern(6, 4, 7)
    result = symconv.profile(Holding(LAYOUTS[layout](p), lambda a, v: torch.mv(a, v), True), torch.randn(4), "exact",
                             all_conventions=True)
    assert {c: result.total(c) for c in ("exact", "docs", "macs")} == ones_oracle(p, 1, True, False)
    if layout != "csc":  # torch's addmm takes no CSC input
        linear = nn.Linear(4, 3)
        result = symconv.profile(linear, LAYOUTS[layout](p), "exact", all_conventions=True)
        assert {c: result.total(c) for c in ("exact", "docs", "macs")} == ones_oracle(p, 3, True, True)


def test_a_graph_convolution_training_step_counts_the_transposed_adjacency():
    p = pattern(6, 6, 3)
    adjacency = p.to_sparse()
    lin = nn.Linear(4, 2)

    class GCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.adjacency = lin, adjacency

        def forward(self, x):
            return torch.sparse.mm(self.adjacency, self.lin(x))

    result = symconv.profile(GCN(), torch.randn(6, 4), "exact", backward=True)
    sparse = [r for r in result.counted if r.counted.what.startswith("sparse")]
    assert [r.phase for r in sparse] == ["forward", "backward"]
    # forward A·(XWᵀ + b); backward Aᵀ·G (the adjacency needs no gradient)
    assert [r.counted.totals["exact"] for r in sparse] == [ones_oracle(p, 2, True, False)["exact"],
                                                          ones_oracle(p.T, 2, True, False)["exact"]]


def test_products_of_two_sparse_factors_or_of_sparse_batches_are_listed_not_counted():
    a = pattern(4, 4, 1).to_sparse()
    for product, op in ((lambda a, x: torch.sparse.mm(a, a), "_sparse_sparse_matmul"),
                        (lambda a, x: torch.mm(a, a), "mm"),
                        (lambda a, x: torch.bmm(torch.stack([a, a]), x.expand(2, 4, 3)), "bmm")):
        result = symconv.profile(Holding(a, product, True), torch.randn(4, 3), "exact")
        assert result.total() == 0 and not result.counted
        assert any(r.op == f"aten.{op}" and r.counted is None for r in result.records)
        assert op in str(result)


def test_the_users_sparse_matrix_is_left_as_it_was():
    p = pattern(5, 4, 2)
    matrix = LAYOUTS["uncoalesced coo"](p)
    model = Holding(matrix, torch.mm, True)
    symconv.profile(model, torch.randn(4, 3), "exact")
    assert model.matrix is matrix and not matrix.is_coalesced() and matrix._nnz() == 2 * int(p.sum())


def test_a_sparse_model_needs_an_example_tensor():
    model = Holding(pattern(5, 4, 0).to_sparse_csr(), torch.mm, False)
    with pytest.raises(symconv.SymconvError, match="sparse_csr tensor of shape \\(5, 4\\).*pass an example tensor"):
        symconv.profile(model, (4, 3), "exact")
    with pytest.raises(symconv.SymconvError, match="symbolic sizes cannot count this model.*sparse_csr"):
        symconv.profile(model, (4, "n"), "exact")


class Uncopyable(torch.Tensor):
    """A tensor subclass that refuses a copy with its values."""

    def __deepcopy__(self, memo):
        raise RuntimeError("this tensor refuses to be copied")


def test_a_copy_refused_on_the_real_values_run_is_not_blamed_on_the_forward():
    class Branching(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.ones(3).as_subclass(Uncopyable)

        def forward(self, x):
            return x * 2 if x.sum() > 0 else x  # data-dependent: the meta run cannot take it

    with pytest.raises(symconv.SymconvError) as raised:
        symconv.profile(Branching(), torch.ones(3), "exact")
    message = str(raised.value)
    assert message.startswith("the model does not run on input (3): cannot copy the model") and \
        "refuses to be copied" in message and "forward raised" not in message


def test_a_sparse_input_through_a_functional_product():
    p = pattern(4, 5, 5)
    weight = torch.randn(3, 5)
    result = symconv.profile(Holding(weight, lambda w, x: F.linear(x, w), True), p.to_sparse(), "exact",
                             all_conventions=True)
    assert {c: result.total(c) for c in ("exact", "docs", "macs")} == ones_oracle(p, 3, True, False)


def test_torchs_flop_counter_with_symconvs_mapping_counts_the_stored_elements():
    from torch.utils.flop_counter import FlopCounterMode
    p = pattern(5, 4, 4)
    for layout in ("coo", "csr"):
        counter = FlopCounterMode(display=False, custom_mapping=symconv.flop_counter_mapping("exact"))
        with counter:
            torch.mm(LAYOUTS[layout](p), torch.randn(4, 3))
        assert counter.get_total_flops() == ones_oracle(p, 3, True, False)["exact"]
    with pytest.raises(symconv.SymconvError, match="does not count aten.mm on these arguments"), \
            FlopCounterMode(display=False, custom_mapping=symconv.flop_counter_mapping("exact")):
        torch.mm(p.to_sparse(), p.T.to_sparse())
