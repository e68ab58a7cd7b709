"""Build the documentation site: the generated pages, the conventions and the peer comparison, offline.

``symconv site --out DIR`` writes a MkDocs project (Material theme, formulas by
``pymdownx.arithmatex``) into a temporary folder and builds it into DIR. KaTeX is
served from the site itself: its ``dist`` folder comes from ``--katex`` (a folder
or the tarball ``npm pack katex`` writes), from ``$SYMCONV_KATEX``, or from
``npm pack katex`` run into symconv's cache. No page loads anything from another
host: the theme's web fonts are off, and a test checks every built page in a
headless browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..core.conventions import CONVENTIONS
from ..core.errors import SymconvError
from ..core.latex import to_latex
from ..core.model import cost_model
from ..core.names import LAYER_KINDS
from .derive import generate

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "symconv"
README = Path(__file__).resolve().parents[2] / "README.md"

#: renders every formula arithmatex left in the page, and marks each one rendered or failed (the browser check
#: counts the marks)
RENDER_JS = """\
(function () {
  function render() {
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      if (el.dataset.symconv) { return; }
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      tex = tex.replace(/^\\\\[\\[(]/, "").replace(/\\\\[\\])]$/, "");
      try {
        katex.render(tex, el, {displayMode: display, throwOnError: true, strict: "ignore"});
        el.dataset.symconv = "rendered";
      } catch (err) {
        el.dataset.symconv = "error";
        el.setAttribute("title", String(err));
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
"""

MKDOCS_YML = """\
site_name: symconv
site_description: Exact operation counts of PyTorch convolution layers, derived symbolically
use_directory_urls: false
theme:
  name: material
  font: false
  features:
    - content.tabs.link
markdown_extensions:
  - admonition
  - tables
  - toc:
      permalink: true
  - pymdownx.details
  - pymdownx.superfences
  - pymdownx.tabbed:
      alternate_style: true
  - pymdownx.arithmatex:
      generic: true
extra_css:
  - assets/katex/katex.min.css
extra_javascript:
  - assets/katex/katex.min.js
  - assets/render-math.js
nav:
  - Home: index.md
  - Conventions: conventions.md
  - Layers:
{layers}
  - Derivations:
{derivations}
  - Peers: peers.md
"""


def _katex_dist(source: str | Path | None) -> Path:
    """KaTeX's dist folder: from a folder or tarball, $SYMCONV_KATEX, or ``npm pack katex`` into the cache."""
    source = source or os.environ.get("SYMCONV_KATEX")
    if source is None:
        cached = CACHE / "katex"
        if not (cached / "package" / "dist" / "katex.min.js").is_file():
            npm = shutil.which("npm")
            if npm is None:
                raise SymconvError("KaTeX is needed to render the formulas offline: give --katex with the tarball "
                                   "of `npm pack katex` (or its dist folder), or install npm")
            cached.mkdir(parents=True, exist_ok=True)
            done = subprocess.run([npm, "pack", "katex", "--silent"], cwd=cached, capture_output=True, text=True)
            tarballs = sorted(cached.glob("katex-*.tgz"))
            if done.returncode or not tarballs:
                raise SymconvError(f"npm pack katex failed: {(done.stderr or done.stdout).strip()[:200]}")
            source = tarballs[-1]
        else:
            return cached / "package" / "dist"
    path = Path(source)
    if path.is_dir():
        dist = path / "dist" if (path / "dist").is_dir() else path
        if not (dist / "katex.min.js").is_file():
            raise SymconvError(f"{str(path)!r} holds no katex.min.js (give KaTeX's dist folder or its npm tarball)")
        return dist
    if not path.is_file():
        raise SymconvError(f"KaTeX source {str(path)!r} does not exist")
    target = CACHE / "katex"
    try:
        with tarfile.open(path) as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise SymconvError(f"cannot unpack KaTeX from {str(path)!r}: {err}") from None
    dist = target / "package" / "dist"
    if not (dist / "katex.min.js").is_file():
        raise SymconvError(f"{str(path)!r} is not KaTeX's npm tarball (no package/dist/katex.min.js)")
    return dist


def _index() -> str:
    layers = "\n".join(f"- [{kind}](layers/{kind}.md): ψ, λ, γ and the total, in the moduleprofiler pages' "
                       f"structure; [derivation](derivations/{kind}.md)" for kind in LAYER_KINDS)
    return ("# symconv\n\nExact operation counts of PyTorch convolution layers, derived symbolically. Every "
            "formula on this site is printed from symconv's model and proven by `symconv check-docs`.\n\n"
            f"{layers}\n\nThe [conventions](conventions.md) say what each count counts; the "
            "[peers](peers.md) page sets symconv beside other FLOP counters.\n")


def _conventions() -> str:
    lines = ["# Conventions", "",
             "A convention says what a multiplication, an addition and the filter aggregation are. "
             "Per filter, for ConvTranspose2d and Conv2d:", ""]
    for name, conv in CONVENTIONS.items():
        lines += [f"## `{name}`", "", conv.description[0].upper() + conv.description[1:] + ".", ""]
        for kind in ("ConvTranspose2d", "Conv2d"):
            m = cost_model(kind)
            lines += [f"{kind}, with the {name} convention:", "",
                      f"$$\n\\lambda = {to_latex(m.lam(name))}\n$$\n",
                      f"$$\n\\gamma = {to_latex(m.gamma(True, name))}\n$$\n"]
    return "\n".join(lines)


def _peers() -> str:
    """The peer comparison of the project README (benchmarks/peers.py measures it)."""
    head = "# Peers\n\n"
    try:
        text = README.read_text(encoding="utf-8")
    except OSError:
        return head + "The peer comparison lives in the project README (`benchmarks/peers.py` measures it).\n"
    start = text.find("## Peers")
    if start < 0:
        return head + "The project README holds no peer comparison.\n"
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    return head + section.split("\n", 1)[1].lstrip()


def write_project(root: Path, katex: Path) -> Path:
    """The MkDocs project of the site under ``root``; returns its mkdocs.yml."""
    docs = root / "docs"
    for folder in ("layers", "derivations", "assets"):
        (docs / folder).mkdir(parents=True, exist_ok=True)
    for name, text in generate(style="moduleprofiler").items():
        (docs / "layers" / name).write_text(text, encoding="utf-8")
    for name, text in generate().items():
        (docs / "derivations" / name).write_text(text, encoding="utf-8")
    (docs / "index.md").write_text(_index(), encoding="utf-8")
    (docs / "conventions.md").write_text(_conventions(), encoding="utf-8")
    (docs / "peers.md").write_text(_peers(), encoding="utf-8")
    (docs / "assets" / "katex").mkdir()
    for name in ("katex.min.js", "katex.min.css"):
        shutil.copy2(katex / name, docs / "assets" / "katex" / name)
    shutil.copytree(katex / "fonts", docs / "assets" / "katex" / "fonts")
    (docs / "assets" / "render-math.js").write_text(RENDER_JS, encoding="utf-8")
    config = root / "mkdocs.yml"
    config.write_text(MKDOCS_YML.format(
        layers="\n".join(f"      - {kind}: layers/{kind}.md" for kind in LAYER_KINDS),
        derivations="\n".join(f"      - {kind}: derivations/{kind}.md" for kind in LAYER_KINDS)), encoding="utf-8")
    return config


def build_site(out: str | Path, katex: str | Path | None = None) -> Path:
    """Build the site into ``out`` (created or replaced); returns the folder."""
    try:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
    except ImportError:
        raise SymconvError("the site needs mkdocs: pip install 'symconv[docs]'") from None
    out = Path(out).resolve()
    if out.exists() and not (out.is_dir() and ((out / "index.html").is_file() or not any(out.iterdir()))):
        raise SymconvError(f"{str(out)!r} exists and is not a built site: choose an empty or new folder")
    dist = _katex_dist(katex)
    with tempfile.TemporaryDirectory(prefix="symconv-site-") as tmp:
        config = write_project(Path(tmp), dist)
        staging = Path(tmp) / "site"
        build(load_config(str(config), site_dir=str(staging), strict=False))
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staging, out)
    return out
