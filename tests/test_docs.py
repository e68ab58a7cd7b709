"""check-docs, derive and explain."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest

from symconv.core.errors import SymconvError
from symconv.frontends import docs_check
from symconv.frontends.cli import main
from symconv.frontends.derive import generate, long_lines
from symconv.frontends.explain import explain
from symconv.frontends.parsing import parse_layer

from .conftest import ROOT


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


# The verdicts, equation by equation ("i" marks inline math), that the pages' equations deserve.
EXPECTED = {
    "docs-conv2d.txt": [
        ("1", "not understood", "", None), ("2", "not understood", "", None),
        ("3", "proven", "output_size", None), ("4", "proven", "output_size", None), ("5", "proven", "psi", None),
        ("5", "proven", "psi", None), ("6", "docs only", "lambda", None), ("7", "docs only", "gamma", True),
        ("8", "docs only", "gamma", True), ("8", "docs only", "gamma", False), ("9", "proven", "total", None),
        ("10", "docs only", "total", True), ("11", "docs only", "total", True), ("i43", "docs only", "gamma", False),
        ("12", "docs only", "total", False), ("i44", "docs only", "total", True),
        ("i45", "docs only", "total", False)],
    "docs-convtranspose1d.txt": [
        ("1", "proven", "output_size", None), ("2", "proven", "psi", None), ("2", "proven", "psi", None),
        ("3", "docs only", "lambda", None), ("4", "docs only", "gamma", True), ("5", "docs only", "gamma", True),
        ("5", "docs only", "gamma", False), ("6", "proven", "total", None), ("7", "docs only", "total", True),
        ("i41", "docs only", "gamma", False), ("8", "docs only", "total", False),
        ("i42", "docs only", "total", True), ("i43", "docs only", "total", False)],
    "docs-convtranspose2d.txt": [
        ("1", "proven", "output_size", None), ("2", "proven", "output_size", None), ("3", "proven", "psi", None),
        ("3", "proven", "psi", None), ("4", "docs only", "lambda", None), ("5", "docs only", "gamma", True),
        ("6", "docs only", "gamma", True), ("6", "docs only", "gamma", False), ("7", "proven", "total", None),
        ("8", "docs only", "total", True), ("i39", "docs only", "gamma", False), ("9", "docs only", "total", False),
        ("i40", "docs only", "total", True), ("i41", "docs only", "total", False)],
}


def verdicts(report) -> list[tuple]:
    return [(("i" if v.inline else "") + str(v.number), v.verdict,
             v.quantity.split(",")[0].replace("output size", "output_size"), v.bias) for v in report.verdicts]


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_every_equation_of_the_seed_pages_gets_a_verdict(seeds, page):
    text = (seeds / page).read_text()
    report = docs_check.check_text(text, page)
    blocks = docs_check.display_equations(text)
    assert {v.number for v in report.verdicts if not v.inline} == set(range(1, len(blocks) + 1))
    assert verdicts(report) == EXPECTED[page]
    for v in report.verdicts:
        if v.verdict == "not understood":
            assert "is not a quantity symconv computes" in v.detail
        if v.verdict == "docs only":
            assert v.exact_tex and "differs from the exact convention at" in v.detail


def test_an_altered_output_size_is_reported_wrong(seeds, tmp_path):
    text = (seeds / "docs-convtranspose1d.txt").read_text()
    original = r"\text{output\_padding}+1 \end{equation}"
    assert original in text
    altered = tmp_path / "page.md"
    altered.write_text(text.replace(original, r"\text{output\_padding}+2 \end{equation}"))
    report = docs_check.check_page(altered)
    first = report.verdicts[0]
    assert (first.verdict, report.wrong) == ("wrong", 1)
    assert first.detail == "differs at ConvTranspose1d(1, 1, 1) on input (1, 1, 1): page 2, engine 1"
    status, out, _ = run_cli("check-docs", str(altered))
    assert status == 1 and "[wrong] eq 1" in out


def test_markdown_math_forms(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# torch.nn.Conv1d\n\n"
                    "$$\\psi = \\frac{C_{in} \\times C_{out}}{\\text{groups}}$$\n\n"
                    "\\[ \\lambda = L_{out} \\times \\left(2 \\times \\text{kernel\\_size} - 1\\right) \\]\n\n"
                    "$$\\psi = C_{in} \\times C_{out}$$\n\n"
                    "$$\\psi = \\operatorname{weird}(x)$$\n\n"
                    "Costs $5 and $6 are not math; $N$ is no statement; for bias=False $\\gamma = 1$ is.\n")
    report = docs_check.check_page(page)
    assert [v.verdict for v in report.verdicts] == ["proven", "docs only", "wrong", "not understood", "wrong"]
    assert report.verdicts[2].detail == "differs at Conv1d(2, 2, 1, groups=2) on input (1, 2, 1): page 4, engine 2"
    assert report.verdicts[-1].inline and report.verdicts[-1].bias is False


def test_check_docs_cli_errors(tmp_path, seeds):
    status, out, err = run_cli("check-docs", str(tmp_path / "missing.md"))
    assert status == 2 and "not checked: cannot read page" in out and not err
    empty = tmp_path / "empty.md"
    empty.write_text("no layer here, but $$\\psi = C_{in}$$")
    status, out, err = run_cli("check-docs", str(empty), str(seeds / "docs-convtranspose1d.txt"))
    assert status == 2 and not err
    assert f"{empty}: not checked: the page names no torch.nn convolution layer" in out
    assert "docs-convtranspose1d.txt: ConvTranspose1d, " in out  # the other page is still reported
    status, out, _ = run_cli("check-docs", "--layer", "Conv1d", str(empty))
    assert status == 1 and "[wrong] eq 1 (psi)" in out


# --- mutation tests: each kind of mistake on the seed pages, and rewrites that must keep their verdict ---------

def _mutant(seeds, page: str, old: str | tuple, new: str | tuple) -> str:
    """The page with one mistake: each ``old`` (the first occurrence) replaced by its ``new``."""
    text = (seeds / page).read_text()
    for o, n in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
        assert o in text, o
        text = text.replace(o, n, 1)
    return text


def _verdicts_of(text: str, **options) -> list[tuple]:
    return verdicts(docs_check.check_text(text, **options))


MUTANTS = [
    # (page, old, new, equation, verdict it must get)
    ("docs-conv2d.txt", (r"H_\text{out}=\left[", r"\text{stride[0]}}+1\right]"),  # floor brackets dropped
     (r"H_\text{out}=", r"\text{stride[0]}}+1"), "3", "wrong"),
    ("docs-conv2d.txt", (r"W_\text{out}=\left[", r"\text{stride[1]}}+1\right]"),
     (r"W_\text{out}=\left(", r"\text{stride[1]}}+1\right)"), "4", "wrong"),
    ("docs-convtranspose2d.txt", r"-2\times\text{padding[0]}", r"-\text{padding[0]}", "1", "wrong"),
    ("docs-convtranspose2d.txt", r"-2\times\text{padding[1]}", r"-3\times\text{padding[1]}", "2", "wrong"),
    ("docs-convtranspose1d.txt", r"\left(L_{in}-1\right)", r"L_{in}", "1", "wrong"),
    ("docs-conv2d.txt", r"\psi = \left(\frac{C_{\text{in}}}{\text{groups}}\right)",
     r"\psi = \left(C_{\text{in}}\right)", "5", "wrong"),  # groups forgotten in one side of the chain
    ("docs-conv2d.txt", r"\text{kernel\_size[1]}-1\right) \end{equation}",
     r"\text{kernel\_size[1]}+1\right) \end{equation}", "6", "wrong"),
    ("docs-convtranspose2d.txt", r"\text{if}\ \text{bias}=\text{True}", r"\text{if}\ \text{bias}=\text{False}",
     "6", "wrong"),  # the bias=True row labelled bias=False
    ("docs-convtranspose1d.txt", r"\times\left(\frac{C_{in}}{\text{groups}}-1\right)\) and",
     r"\times\left(\frac{C_{in}}{\text{groups}}\right)\) and", "i41", "wrong"),  # inline, after bias=False
    ("docs-conv2d.txt", r"\large{\text{Conv2d}_{ops}=N\times\left(\frac{C_{\text{in}}",
     r"\large{\text{Conv2d}_{ops}=2\times N\times\left(\frac{C_{\text{in}}", "i44", "wrong"),  # summary box
]


@pytest.mark.parametrize("page, old, new, number, verdict", MUTANTS, ids=[f"{m[0]}-{m[3]}" for m in MUTANTS])
def test_mutants_are_reported_wrong(seeds, page, old, new, number, verdict):
    got = [v for v in _verdicts_of(_mutant(seeds, page, old, new)) if v[0] == number]
    assert verdict in [v[1] for v in got], got
    others = [v for v in _verdicts_of(_mutant(seeds, page, old, new)) if v[0] != number]
    assert others == [v for v in EXPECTED[page] if v[0] != number]  # one mistake, one verdict changed


def test_an_equation_labelled_bias_true_holding_the_bias_false_value_is_wrong(seeds):
    text = (seeds / "docs-convtranspose2d.txt").read_text()
    blocks = docs_check.display_equations(text)
    with_bias, without = blocks[7], blocks[8]  # "For the case of bias=True …" and "For the case of bias=False …"
    mutant = text.replace(with_bias, without, 1)
    got = [v for v in _verdicts_of(mutant) if v[0] == "8"]
    assert got == [("8", "wrong", "total", True)]


def test_the_tab_label_is_read(tmp_path):
    from symconv.frontends.derive import moduleprofiler_page
    page = moduleprofiler_page("ConvTranspose1d")
    tabs = page.split('=== "bias=')
    assert len(tabs) == 3
    with_bias, without = (t.split("$$")[1] for t in tabs[1:])
    mutant = page.replace(with_bias, without, 1)
    report = docs_check.check_text(mutant)
    assert [v.verdict for v in report.verdicts][-2:] == ["wrong", "docs only"]
    assert [v.bias for v in report.verdicts][-1] is False


def test_an_unknown_name_spoils_its_equation_only(seeds):
    text = _mutant(seeds, "docs-conv2d.txt", r"\text{stride[0]}}+1\right]", r"\text{stride[0]}}+1\right]+\text{output\_padding}")
    report = docs_check.check_text(text)
    bad = [v for v in report.verdicts if v.verdict == "not understood" and "output" in v.detail]
    assert len(bad) == 1 and bad[0].number == 3 and bad[0].detail == "unknown name output_padding"
    assert verdicts(report)[3:] == EXPECTED["docs-conv2d.txt"][3:]


def test_a_conv1d_page_with_output_padding(tmp_path):
    from symconv.frontends.derive import moduleprofiler_page
    page = moduleprofiler_page("Conv1d")
    mutant = page.replace(r"- 1}{\text{stride}}", r"- 1 + \text{output\_padding}}{\text{stride}}", 1)
    assert mutant != page
    first = docs_check.check_text(mutant).verdicts[0]
    assert (first.verdict, first.detail) == ("not understood", "unknown name output_padding")


REWRITES = [
    # the same equation written differently: reordered terms, \cdot for \times, expanded products
    ("docs-convtranspose2d.txt", r"\text{output\_padding[0]}+1", r"1+\text{output\_padding[0]}"),
    ("docs-convtranspose2d.txt", r"\times", r"\cdot "),
    ("docs-conv2d.txt", r"\text{Conv2d}_{ops}=N\times\left(\psi\times\lambda+\gamma\right)",
     r"\text{Conv2d}_{ops}=N\times\psi\times\lambda+N\times\gamma"),
    ("docs-convtranspose1d.txt", r"\gamma=C_{out}\times L_\text{out}\times\left(\left(\frac{C_{in}}{\text{groups}}-1\right)+1\right)",
     r"\gamma=C_{out}\times L_\text{out}\times\frac{C_{in}}{\text{groups}}"),
]


@pytest.mark.parametrize("page, old, new", REWRITES, ids=[f"{r[0]}-{i}" for i, r in enumerate(REWRITES)])
def test_equivalent_rewrites_keep_their_verdict(seeds, page, old, new):
    text = (seeds / page).read_text()
    assert old in text
    assert _verdicts_of(text.replace(old, new)) == EXPECTED[page]


@pytest.mark.parametrize("tex, verdict", [
    (r"2^{10^{10}}", "too large to check"), (r"\left(C_{in}\right)!", "too large to check"),
    (r"\sum_{i=1}^{10^{12}} i", "too large to check"), ("{" * 5000 + "C_{in}" + "}" * 5000, "not understood"),
    (r"C_{in}^{C_{out}}", "too large to check")])
def test_bounded_work(tex, verdict):
    page = f"# torch.nn.Conv2d\n\n$$\\psi = {tex}$$\n\n$$\\psi = \\frac{{C_{{in}} \\times C_{{out}}}}{{\\text{{groups}}}}$$\n"
    report = docs_check.check_text(page)
    assert [v.verdict for v in report.verdicts] == [verdict, "proven"]


def test_unclosed_delimiters_scan_in_linear_time():
    # 100 KB of openers none of which closes: each gets its verdict, the page is not re-read for each
    page = "# torch.nn.Conv2d\n" + "\\[ \\( $$ " * 12_000 + "\n$$\\psi = C_{in}$$"
    assert len(page) > 100_000
    report = docs_check.check_text(page)
    assert report.verdicts[0].verdict == "not understood" and "unclosed" in report.verdicts[0].detail


def test_unproven_names_the_space_searched():
    # a true identity SymPy does not prove: floor((H + 1)/2) written through ceiling
    page = ("# torch.nn.Conv2d\n\n$$H_{out} = \\left\\lceil \\frac{H_{in} + 2 \\times \\text{padding[0]} - "
            "\\text{dilation[0]} \\times \\left(\\text{kernel\\_size[0]} - 1\\right)}{\\text{stride[0]}} "
            "\\right\\rceil$$\n")
    v = docs_check.check_text(page).verdicts[0]
    assert v.verdict in ("proven", "unproven")
    if v.verdict == "unproven":
        assert "searched:" in v.detail and "padding 0..4" in v.detail


def test_symconv_pages_are_accepted_whole(validation_report):
    from symconv.frontends.derive import moduleprofiler_page
    pages = {f"derivations/{k}": t for k, t in generate(validation_report).items()}
    pages.update({f"moduleprofiler/{k}": moduleprofiler_page(k[:-3]) for k in generate(validation_report)})
    for name, text in pages.items():
        report = docs_check.check_text(text, name)
        assert report.verdicts and {v.verdict for v in report.verdicts} <= {"proven", "docs only"}, (
            name, [v.line() for v in report.verdicts if v.verdict not in ("proven", "docs only")])
        if name.startswith("derivations/"):  # the backward pass: three gradients under each convention, proven
            assert [v.quantity for v in report.verdicts if v.quantity.startswith("grad_")] == \
                ["grad_input", "grad_weight", "grad_bias"] * 3, name


@pytest.mark.parametrize("kind", ["Conv2d", "ConvTranspose1d"])
def test_gradient_equations_are_proven_or_refuted_with_a_layer(kind):
    # the exact convention's rules as the issue states them, written by hand in the pages' notation
    two = kind == "Conv2d"
    S, Z_in, Z_tap = ((r"S_{H} \times S_{W}", r"Z^{in}_{H} \times Z^{in}_{W}", r"Z^{tap}_{H} \times Z^{tap}_{W}")
                      if two else ("S_{L}", "Z^{in}_{L}", "Z^{tap}_{L}"))
    out = r"H_{out} \times W_{out}" if two else "L_{out}"
    psi = r"\frac{C_{in} \times C_{out}}{\text{groups}}"
    page = (f"# torch.nn.{kind}\n\nThe backward pass, convention `exact`:\n\n"
            f"$$\\text{{grad\\_input}} = N \\times ({psi} \\times (2 \\times {S} - {Z_in}) + C_{{in}} \\times "
            f"{Z_in} \\times (\\frac{{C_{{out}}}}{{\\text{{groups}}}} - 1))$$\n\n"
            f"$$\\text{{grad\\_weight}} = {psi} \\times (2 \\times N \\times {S} - {Z_tap})$$\n\n"
            f"$$\\text{{grad\\_bias}} = C_{{out}} \\times (N \\times {out} - 1)$$\n\n"
            f"$$\\text{{grad\\_weight}} = {psi} \\times (2 \\times N \\times {S} - 1)$$\n")
    verdicts = docs_check.check_text(page).verdicts
    assert [(v.quantity, v.verdict) for v in verdicts] == [("grad_input", "proven"), ("grad_weight", "proven"),
                                                           ("grad_bias", "proven"), ("grad_weight", "wrong")]
    # the witness: a layer whose backward touches more than one tap (Z_tap > 1)
    assert f"{kind}(" in verdicts[3].detail and "page" in verdicts[3].detail


def test_derivations_are_regenerated_identically(validation_report):
    files = generate(validation_report)
    assert sorted(files) == sorted(p.name for p in (ROOT / "derivations").glob("*.md"))
    for name, text in files.items():
        assert (ROOT / "derivations" / name).read_text(encoding="utf-8") == text, name
        assert text.count("$$") % 2 == 0
        assert not list(long_lines(text)), name


def test_derive_check_flags_a_stale_file(tmp_path, validation_report):
    for name, text in generate(validation_report).items():
        (tmp_path / name).write_text(text)
    (tmp_path / "Conv2d.md").write_text("stale")
    status, out, _ = run_cli("derive", "--check", "--out", str(tmp_path))
    assert status == 1 and out.strip() == f"{tmp_path / 'Conv2d.md'}: differs from what symconv derive generates"


def test_derive_refuses_an_output_it_cannot_write_in_one_line(tmp_path, monkeypatch):
    # a file given as --out (or in its path) ended in FileExistsError or NotADirectoryError with a traceback, after
    # the whole generation
    from symconv.frontends import derive
    generated = []
    monkeypatch.setattr(derive, "generate", lambda style: generated.append(style) or {"Conv1d.md": "# Conv1d\n"})
    taken = tmp_path / "taken"
    taken.write_text("mine")
    status, out, err = run_cli("derive", "--out", str(taken))
    assert status == 2 and out == "" and err == f"symconv derive: error: --out {str(taken)!r} is a file: give a folder\n"
    assert generated == [] and taken.read_text() == "mine"
    status, out, err = run_cli("derive", "--out", str(taken / "pages"))
    assert status == 2 and out == "" and err.count("\n") == 1 and f"cannot write {str(taken / 'pages')!r}" in err
    status, out, _ = run_cli("derive", "--out", str(tmp_path / "pages"))
    assert status == 0 and (tmp_path / "pages" / "Conv1d.md").read_text() == "# Conv1d\n"


def test_explain_the_qa_layer(tmp_path):
    png = tmp_path / "map.png"
    status, out, _ = run_cli("explain", "ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)",
                             "--input", "1,1,4,4", "--at", "0,1", "--plot", str(png))
    assert status == 0
    assert "axis 0: [1, 2, 2, 2, 2, 2, 2, 1]  sum S=14, reached Z=8" in out
    assert "input (0, 0) x kernel tap (1, 2)\n  input (0, 1) x kernel tap (1, 0)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_rejects_bad_positions_and_layers(tmp_path):
    # a position of names or of too few indices read "is outside the output", a negative index "input shape '0,-1'
    # has a non-integer size", and sizes as names (which its help
    # offered) ended in SymPy's TypeError with a traceback; a map too large to plot was refused after the text
    layer = "ConvTranspose2d(1, 1, 4, stride=2, padding=1)"
    png = tmp_path / "map.png"
    for argv, message in (
            (("ConvTranspose1d(1, 1, 3)", "--input", "1,1,3", "--at", "9"), "position 9 is outside the output (5,)"),
            ((layer, "--input", "1,1,4,4", "--at", "x"), "--at 'x' must be comma-separated integers, one per spatial "
                                                         "axis, e.g. 0,1"),
            ((layer, "--input", "1,1,4,4", "--at", "0,-1"), "position 0,-1 is outside the output (8, 8)"),
            ((layer, "--input", "1,1,4,4", "--at", "0"), "position 0 gives 1 index for the 2 spatial axes of the "
                                                         "output (8, 8)"),
            ((layer, "--input", "1,1,H,4"), "explain shows the count maps of a concrete input: input shape "
                                            "(1, 1, H, 4) holds names"),
            ((layer, "--input", "1,1,3000,3000", "--plot", str(png)), "is too large to plot"),
            (("ConvTranspose1d(1, 1, 3", "--input", "1,1,3"), "malformed layer")):
        status, out, err = run_cli("explain", *argv)
        assert status == 2 and out == "" and err.count("\n") == 1 and message in err, argv
    assert not png.exists()
    with pytest.raises(SymconvError, match=r"^position x,0 must be integers, one per spatial axis \(e.g. 0,0\)$"):
        explain(parse_layer(layer), (1, 1, 4, 4), ("x", 0))
