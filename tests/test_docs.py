"""check-docs, derive and explain."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from symconv.frontends import docs_check
from symconv.frontends.cli import main
from symconv.frontends.derive import generate

from .conftest import ROOT


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


# The verdicts, equation by equation, that the pages' equations deserve.
EXPECTED = {
    "docs-conv2d.txt": [
        (1, "not understood", ""), (2, "not understood", ""),
        (3, "proven", "output_size"), (4, "proven", "output_size"), (5, "proven", "psi"), (5, "proven", "psi"),
        (6, "docs only", "lambda"), (7, "docs only", "gamma"), (8, "docs only", "gamma"), (8, "docs only", "gamma"),
        (9, "proven", "total"), (10, "docs only", "total"), (11, "docs only", "total"), (12, "docs only", "total")],
    "docs-convtranspose1d.txt": [
        (1, "proven", "output_size"), (2, "proven", "psi"), (2, "proven", "psi"), (3, "docs only", "lambda"),
        (4, "docs only", "gamma"), (5, "docs only", "gamma"), (5, "docs only", "gamma"), (6, "proven", "total"),
        (7, "docs only", "total"), (8, "docs only", "total")],
    "docs-convtranspose2d.txt": [
        (1, "proven", "output_size"), (2, "proven", "output_size"), (3, "proven", "psi"), (3, "proven", "psi"),
        (4, "docs only", "lambda"), (5, "docs only", "gamma"), (6, "docs only", "gamma"), (6, "docs only", "gamma"),
        (7, "proven", "total"), (8, "docs only", "total"), (9, "docs only", "total")],
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_every_display_equation_of_the_seed_pages_gets_a_verdict(seeds, page):
    text = (seeds / page).read_text()
    report = docs_check.check_text(text, page)
    blocks = docs_check.display_equations(text)
    assert {v.number for v in report.verdicts} == set(range(1, len(blocks) + 1))
    got = [(v.number, v.verdict, v.quantity.split(",")[0].replace("output size", "output_size"))
           for v in report.verdicts]
    assert got == EXPECTED[page]
    for v in report.verdicts:
        if v.verdict == "not understood":
            assert "is not a quantity symconv computes" in v.detail
        if v.verdict == "docs only":
            assert v.exact_tex and "differs from the exact convention at" in v.detail


def test_gamma_cases_are_split_by_bias(seeds):
    report = docs_check.check_text((seeds / "docs-convtranspose2d.txt").read_text())
    cases = [v for v in report.verdicts if v.number == 6]
    assert [v.bias for v in cases] == [True, False]


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


def test_markdown_display_math_forms(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# torch.nn.Conv1d\n\n"
                    "$$\\psi = \\frac{C_{in} \\times C_{out}}{\\text{groups}}$$\n\n"
                    "\\[ \\lambda = L_{out} \\times \\left(2 \\times \\text{kernel\\_size} - 1\\right) \\]\n\n"
                    "$$\\psi = C_{in} \\times C_{out}$$\n\n"
                    "$$\\psi = \\operatorname{weird}(x)$$\n")
    report = docs_check.check_page(page)
    assert [v.verdict for v in report.verdicts] == ["proven", "docs only", "wrong", "not understood"]
    assert report.verdicts[2].detail == "differs at Conv1d(2, 2, 1, groups=2) on input (1, 2, 1): page 4, engine 2"


def test_check_docs_cli_errors(tmp_path):
    status, _, err = run_cli("check-docs", str(tmp_path / "missing.md"))
    assert status == 2 and "cannot read page" in err and "Traceback" not in err
    empty = tmp_path / "empty.md"
    empty.write_text("no layer here")
    status, _, err = run_cli("check-docs", str(empty))
    assert status == 2 and "names no torch.nn convolution layer" in err


def test_derivations_are_regenerated_identically(validation_report):
    files = generate(validation_report)
    assert sorted(files) == sorted(p.name for p in (ROOT / "derivations").glob("*.md"))
    for name, text in files.items():
        assert (ROOT / "derivations" / name).read_text(encoding="utf-8") == text, name
        assert text.count("$$") % 2 == 0


def test_derive_check_flags_a_stale_file(tmp_path, validation_report):
    for name, text in generate(validation_report).items():
        (tmp_path / name).write_text(text)
    (tmp_path / "Conv2d.md").write_text("stale")
    status, out, _ = run_cli("derive", "--check", "--out", str(tmp_path))
    assert status == 1 and out.strip() == f"{tmp_path / 'Conv2d.md'}: differs from what symconv derive generates"


def test_explain_the_qa_layer(tmp_path):
    png = tmp_path / "map.png"
    status, out, _ = run_cli("explain", "ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)",
                             "--input", "1,1,4,4", "--at", "0,1", "--plot", str(png))
    assert status == 0
    assert "axis 0: [1, 2, 2, 2, 2, 2, 2, 1]  sum S=14, reached Z=8" in out
    assert "input (0, 0) x kernel tap (1, 2)\n  input (0, 1) x kernel tap (1, 0)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_rejects_bad_positions_and_layers():
    status, _, err = run_cli("explain", "ConvTranspose1d(1, 1, 3)", "--input", "1,1,3", "--at", "9")
    assert status == 2 and "position (9,) is outside the output (5,)" in err
    status, _, err = run_cli("explain", "ConvTranspose1d(1, 1, 3", "--input", "1,1,3")
    assert status == 2 and "malformed layer" in err
