"""Write and execute the review notebooks (needs the dev extra: pip install -e ".[dev]").

    python notebooks/build.py

The notebooks keep their outputs; ``pytest --nbval`` re-runs them and compares.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

SETUP = """\
from pathlib import Path

import torch
from IPython.display import Math, display

import symconv
from symconv.frontends.docs_check import check_text
from symconv.frontends.parsing import parse_layer
from symconv.oracle.grid import Point
from symconv.oracle.ones import measure, module_from_layer

# The seed pages live in shared/seeds beside the repository.
SEEDS = next(p / "shared" / "seeds" for p in Path.cwd().resolve().parents if (p / "shared" / "seeds").is_dir())"""

TORCH_TABLE = """\
print(f"{'layer':<58} {'input':<16} {'shape':<6} {'docs add.':>10} {'torch':>8} {'exact mult.':>12} {'torch S':>8}")
for text, shape in LAYERS:
    spec = parse_layer(text)
    y = module_from_layer(spec)(torch.zeros(shape))
    docs, exact = symconv.count_layer(spec, shape, "docs"), symconv.count_layer(spec, shape, "exact")
    ones = measure(Point.from_layer(spec, docs.input_size))  # torch ones-convolution, float64
    shape_ok = tuple(y.shape[-spec.ndim:]) == docs.output_size
    assert shape_ok and exact.multiplications == ones.S
    assert docs.additions == ones.docs_additions or not spec.transposed
    print(f"{text:<58} {str(shape):<16} {str(shape_ok):<6} {docs.additions:>10} "
          f"{ones.docs_additions if spec.transposed else '-':>8} {exact.multiplications:>12} {ones.S:>8}")"""


def page_notebook(slug: str, kind: str, layers: list[tuple[str, tuple[int, ...]]]) -> list[tuple[str, str]]:
    """Cells of a notebook that reviews one seed page."""
    return [
        ("markdown", f"# The {kind} page, checked\n\nEvery display equation of `docs-{slug}.txt` is extracted, "
                     "parsed with SymPy's LaTeX parser and compared with symconv's engine. Verdicts: *proven*, "
                     "*docs only* (holds under the pages' convention, not the exact one), *wrong*, "
                     "*not understood* (with the reason)."),
        ("code", SETUP),
        ("code", f'page = "docs-{slug}.txt"\nreport = check_text((SEEDS / page).read_text(), page)\n'
                 "print(report.text())"),
        ("code", "assert report.wrong == 0\nreport.counts()"),
        ("markdown", "## The engine's expressions\n\nPrinted from the symbolic model, in the pages' notation: "
                     "output sizes, ψ, λ, γ and the total under the docs convention, then λ under the exact one."),
        ("code", f'm = symconv.cost_model("{kind}")\n'
                 "for a in range(m.ndim):\n"
                 "    display(Math(m.latex(\"output_size\", axis=a)))\n"
                 "for q in (\"psi\", \"lambda\", \"gamma\", \"total\"):\n"
                 "    display(Math(m.latex(q)))\n"
                 "display(Math(m.latex(\"lambda\", convention=\"exact\")))"),
        ("markdown", "## Numbers against torch\n\nOutput shapes from torch's own modules; S and the docs "
                     "additions `sum(y - 1)` from a torch ones-convolution in float64, so they are exact."),
        ("code", f"LAYERS = {layers!r}\n" + TORCH_TABLE),
    ]


OVERLAP = [
    ("markdown", "# Overlap additions: candidates, where they hold, and coverage\n\n"
                 "Each closed form is checked against torch ones-convolutions over the default grid: the "
                 "exhaustive one-axis grid and seeded 2-d and 3-d samples."),
    ("code", "import matplotlib.pyplot as plt\n\nimport symconv\nfrom symconv.frontends.explain import axis_maps, "
             "full_map\nfrom symconv.frontends.parsing import parse_layer\nfrom symconv.oracle import validate\n\n"
             "report = validate.run(progress=False)\nprint(report.text())"),
    ("markdown", "## Where each candidate holds\n\nShare of the grid inside each candidate's condition, and its "
                 "disagreements inside (must be 0) and outside."),
    ("code", "for c in report.candidates:\n"
             "    print(f\"{c.kind:<14} {c.name:<40} inside {c.inside / c.checked:6.1%}  \"\n"
             "          f\"wrong inside {c.wrong_inside:>5}  wrong outside {c.wrong_outside:>5}\")"),
    ("code", "closed, total = report.coverage()\n"
             "print(f\"closed forms resolve {closed} of {total} layers ({closed / total:.1%}); the exact counter \"\n"
             "      f\"answers the rest\")"),
    ("markdown", "## Count maps\n\nThe number of products landing at each output position of one filter: "
                 "overlap (values above 1) needs additions, gaps (0) get none."),
    ("code", "layers = [\"ConvTranspose2d(1, 1, 4, stride=2, padding=1)\", \"ConvTranspose2d(1, 1, 2, stride=3)\",\n"
             "          \"ConvTranspose2d(1, 1, (3, 5), stride=(2, 2), padding=(1, 3), dilation=(1, 2), \"\n"
             "          \"output_padding=(1, 1))\"]\n"
             "fig, axes = plt.subplots(1, 3, figsize=(12, 4))\n"
             "for ax, text in zip(axes, layers):\n"
             "    spec = parse_layer(text)\n"
             "    grid = full_map(axis_maps(spec, (5, 5)))\n"
             "    image = ax.imshow(grid, cmap=\"viridis\")\n"
             "    ax.set_title(text.replace(\"ConvTranspose2d\", \"\"), fontsize=7)\n"
             "    fig.colorbar(image, ax=ax, shrink=0.7)\n"
             "    print(text, [symconv.count_layer(spec, (1, 5, 5), c).additions for c in (\"docs\", \"exact\")])\n"
             "plt.close(fig)\nfig"),
]

HOW = [
    ("markdown", "# How a transposed convolution computes each output\n\n"
                 "Two questions people ask, answered with symconv's count maps: which input elements meet which "
                 "kernel taps at each output position."),
    ("code", "import torch\n\nimport symconv\nfrom symconv.frontends.parsing import parse_layer\n"
             "from symconv.frontends.explain import explain, meeting"),
    ("markdown", "## A 4×4 input, kernel 1..16, stride 2, padding 1\n\n"
                 "Input of ones, kernel values 1 to 16 row by row. The output is 8×8."),
    ("code", "layer = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)\n"
             "with torch.no_grad():\n"
             "    layer.weight.copy_(torch.arange(1.0, 17.0).reshape(1, 1, 4, 4))\n"
             "    y = layer(torch.ones(1, 1, 4, 4))[0, 0]\n"
             "print(y.to(torch.int64))"),
    ("code", "spec = parse_layer(\"ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)\")\n"
             "print(explain(spec, (1, 1, 4, 4), (0, 1)))"),
    ("markdown", "Each output position sums input × tap over the pairs `meeting` lists. At (0, 0) a single "
                 "pair meets: input (0, 0) with tap (1, 1), whose weight is 6. At (0, 1) two pairs meet: "
                 "tap (1, 2) = 7 and tap (1, 0) = 5, so 12. Padding 1 crops the first row and column of the "
                 "uncropped 10×10 result, which is why tap (0, 0) never shows up at (0, 0)."),
    ("code", "w = layer.weight.detach()[0, 0]\n"
             "for pos in [(0, 0), (0, 1)]:\n"
             "    pairs = meeting(spec, (4, 4), pos)\n"
             "    terms = [int(w[t]) for _, t in pairs]\n"
             "    print(pos, [f\"input {i} x tap {t} = {int(w[t])}\" for i, t in pairs], \"sum\", sum(terms))\n"
             "rebuilt = torch.tensor([[sum(float(w[t]) for _, t in meeting(spec, (4, 4), (r, c))) for c in range(8)]\n"
             "                        for r in range(8)])\n"
             "print(\"every entry rebuilt from the pairs:\", torch.equal(rebuilt, y))"),
    ("markdown", "## ConvTranspose1d with groups=2 and padding=2\n\n"
                 "Four input channels of length 3, weights `[1, 1, 2]` everywhere; torch gives `[8, 8, 10, 10]`."),
    ("code", "gconv = torch.nn.ConvTranspose1d(4, 4, 3, stride=1, padding=2, groups=2, bias=False)\n"
             "x = torch.tensor([1., 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2]).reshape(1, 4, 3)\n"
             "with torch.no_grad():\n"
             "    gconv.weight.copy_(torch.tensor([1., 1, 2] * 8).reshape(4, 2, 3))\n"
             "    out = gconv(x)\n"
             "print(out.flatten().tolist())"),
    ("markdown", "Padding 2 crops two positions at each end of the uncropped length-5 output, leaving one "
                 "position where all three input elements meet the taps in reverse order. Groups split the four "
                 "channels into two pairs: output channel o sums over the two input channels of its group."),
    ("code", "gspec = parse_layer(\"ConvTranspose1d(4, 4, 3, padding=2, groups=2, bias=False)\")\n"
             "pairs = meeting(gspec, (3,), (0,))\n"
             "print(\"pairs at position 0:\", pairs)\n"
             "per_group = gspec.in_channels // gspec.groups\n"
             "w = gconv.weight.detach()  # (C_in, C_out / groups, k)\n"
             "rebuilt = []\n"
             "for o in range(4):\n"
             "    g = o // (gspec.out_channels // gspec.groups)\n"
             "    channels = range(g * per_group, (g + 1) * per_group)\n"
             "    rebuilt.append(sum(float(x[0, c, i[0]] * w[c, o % 2, t[0]]) for c in channels for i, t in pairs))\n"
             "print(\"rebuilt:\", rebuilt)\n"
             "print(\"exact counts:\", symconv.count_layer(gspec, (1, 4, 3), \"exact\").as_dict())"),
]


AUTHOR = [
    ("markdown", "# Writing a page for one layer family, and checking it\n\n"
                 "A docs author documents `ConvTranspose2d(C_in, C_out, 4, stride=2, padding=1)`, the upsampling "
                 "layer of most decoders. Every formula comes from symconv's engine; the page is then read back by "
                 "`check-docs`, which proves each equation or gives a layer where it fails."),
    ("code", "import symconv\nfrom symconv.core.latex import to_latex\nfrom symconv.core.sizes import Formula\n"
             "from symconv.frontends.docs_check import check_text\n\n"
             'm = symconv.cost_model("ConvTranspose2d")\n'
             'layer = symconv.Layer.make("ConvTranspose2d", 64, 32, 4, stride=2, padding=1)'),
    ("markdown", "## 1. The general formulas, in the pages' notation\n\n"
                 "The output size, ψ, λ and γ as the model writes them (docs convention, the pages' way of counting)."),
    ("code", "for a in range(m.ndim):\n    print(f\"{to_latex(m.axes[a].L_out)} = {to_latex(m.output_size(a))}\")\n"
             "print(r\"\\psi =\", to_latex(m.psi))\n"
             "print(r\"\\lambda =\", to_latex(m.lam('docs')))\n"
             "print(r\"\\gamma =\", to_latex(m.gamma(True, 'docs')), \"  (bias=True)\")"),
    ("markdown", "## 2. The family in the input size\n\n"
                 "With the family's arguments fixed, the counts are exact formulas in $H_{in}$ and $W_{in}$ "
                 "(the sizes are names): the floors vanish, the additions of the overlapping kernel are a "
                 "polynomial."),
    ("code", 'for convention in ("docs", "exact"):\n'
             '    count = symconv.count_layer(layer, (1, 64, "H_in", "W_in"), convention)\n'
             '    formula = Formula(count.total, count.domain)\n'
             '    print(f"{convention:>5}: total = {formula}")\n'
             '    assert formula(H_in=16, W_in=16) == symconv.count_layer(layer, (1, 64, 16, 16), convention).total'),
    ("markdown", "## 3. A draft page, with one mistake\n\n"
                 "The author writes the page in Markdown for Material for MkDocs (`$$…$$` display math, labels in "
                 "the sentence before an equation). The draft's γ for bias=False forgets the `- 1`."),
    ("code", 'lam = to_latex(m.lam("docs"))\n'
             'gamma_true, gamma_false = (to_latex(m.gamma(b, "docs")) for b in (True, False))\n'
             'wrong_false = gamma_true  # the mistake: the bias=True value under the bias=False label\n'
             'draft = f"""# ConvTranspose2d, k4 s2 p1 (torch.nn.ConvTranspose2d)\n\n'
             '$$H_{{out}} = 2 \\\\times H_{{in}}$$\n\n'
             '$$\\\\psi = {to_latex(m.psi)}$$\n\n'
             '$$\\\\lambda = {lam}$$\n\n'
             'For bias=True:\n\n$$\\\\gamma = {gamma_true}$$\n\n'
             'For bias=False:\n\n$$\\\\gamma = {wrong_false}$$\n"""\n'
             'report = check_text(draft, "draft.md")\nprint(report.text())'),
    ("markdown", "`H_out = 2 H_in` holds for this family only, so the checker, which knows the layer kind but not "
                 "the family, finds a layer where it fails; and the bias=False γ is wrong. The author states the "
                 "output size in general and fixes γ:"),
    ("code", 'fixed = draft.replace("$$H_{out} = 2 \\\\times H_{in}$$", '
             'f"$$H_{{out}} = {to_latex(m.output_size(0))}$$")\n'
             'fixed = fixed.replace(f"For bias=False:\\n\\n$$\\\\gamma = {wrong_false}$$", '
             'f"For bias=False:\\n\\n$$\\\\gamma = {gamma_false}$$")\n'
             'report = check_text(fixed, "page.md")\nprint(report.text())\n'
             'assert report.wrong == 0 and set(report.counts()) and '
             'all(v.verdict in ("proven", "docs only") for v in report.verdicts)'),
    ("markdown", "## 4. The whole page, generated\n\n"
                 "`symconv derive --style moduleprofiler` writes the complete page in the moduleprofiler template "
                 "(summary box with bias tabs, glossary); `symconv site --out site` builds the site offline."),
    ("code", "from symconv.frontends.derive import moduleprofiler_page\n\n"
             'page = moduleprofiler_page("ConvTranspose2d")\nreport = check_text(page, "ConvTranspose2d.md")\n'
             "print(report.counts())\nprint(page[:600])"),
]


def write(name: str, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name}-{i}"  # stable ids: regenerating changes only what changed
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, HERE / f"{name}.ipynb")
    print(f"wrote {name}.ipynb")


def main() -> None:
    write("conv2d", page_notebook("conv2d", "Conv2d", [
        ("Conv2d(3, 8, 3)", (1, 3, 8, 8)), ("Conv2d(4, 8, (3, 5), stride=2, padding=(1, 2), groups=2)",
                                            (2, 4, 9, 11)),
        ("Conv2d(2, 2, 3, padding=3, dilation=2, bias=False)", (1, 2, 5, 4))]))
    write("convtranspose1d", page_notebook("convtranspose1d", "ConvTranspose1d", [
        ("ConvTranspose1d(1, 1, 3, bias=False)", (1, 1, 2)),
        ("ConvTranspose1d(4, 4, 3, padding=2, groups=2, bias=False)", (1, 4, 3)),
        ("ConvTranspose1d(2, 3, 4, stride=3, padding=1, output_padding=2)", (2, 2, 7))]))
    write("convtranspose2d", page_notebook("convtranspose2d", "ConvTranspose2d", [
        ("ConvTranspose2d(1, 1, 2, bias=False)", (1, 1, 2, 2)),
        ("ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)", (1, 1, 4, 4)),
        ("ConvTranspose2d(4, 2, (3, 2), stride=(3, 1), padding=(2, 0), dilation=(1, 2), output_padding=(1, 1))",
         (1, 4, 5, 6))]))
    write("overlap_additions", OVERLAP)
    write("how_transposed_conv_computes", HOW)
    write("docs_author", AUTHOR)


if __name__ == "__main__":
    main()
