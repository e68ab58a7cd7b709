"""The documentation site: built by `symconv site`, every page checked in a real headless browser.

Needs Debian's chromium and KaTeX ($SYMCONV_KATEX, or npm to fetch it). Locally the
tests skip without them; CI installs both and sets SYMCONV_REQUIRE_BROWSER=1, so
there they fail instead. One page's screenshot is kept in $SYMCONV_ARTIFACTS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from symconv.frontends import site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("SYMCONV_REQUIRE_BROWSER") == "1"


def _needs(condition: bool, reason: str) -> None:
    if not condition:
        if REQUIRED:
            pytest.fail(f"{reason} (SYMCONV_REQUIRE_BROWSER=1)")
        pytest.skip(reason)


def _chromium(*args: str) -> str:
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                           *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered_dom(page: Path) -> str:
    """The page's DOM after its scripts ran."""
    return _chromium("--dump-dom", page.as_uri())


def formula_report(dom: str) -> dict[str, int]:
    """Formulas on a page, how many KaTeX rendered, and every sign of a failure."""
    return {"formulas": len(re.findall(r'class="arithmatex', dom)),
            "rendered": dom.count('data-symconv="rendered"'),
            "failed": dom.count('data-symconv="error"'),
            "katex errors": dom.count("katex-error") + dom.lower().count("#cc0000"),
            "remote loads": len(re.findall(r'(?:src|<link[^>]*href)="(?:https?:)?//', dom))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _needs(CHROMIUM is not None, "chromium is not installed")
    _needs(bool(os.environ.get("SYMCONV_KATEX") or shutil.which("npm")), "no KaTeX: set SYMCONV_KATEX or install npm")
    if not REQUIRED:
        pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site") / "site"
    start = time.perf_counter()
    site.build_site(out)
    print(f"\nsite built in {time.perf_counter() - start:.1f} s")
    return out


def test_every_page_loads_and_every_formula_renders(built):
    pages = sorted(p for p in built.rglob("*.html") if p.name != "404.html" and "search" not in p.parts)
    assert {p.relative_to(built).as_posix() for p in pages} >= {
        "index.html", "conventions.html", "peers.html",
        *(f"{folder}/{kind}.html" for folder in ("layers", "derivations")
          for kind in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"))}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        doms = dict(zip(pages, pool.map(rendered_dom, pages)))
    print(f"\n{len(pages)} pages checked in chromium in {time.perf_counter() - start:.1f} s")
    total = 0
    for page, dom in doms.items():
        name = page.relative_to(built).as_posix()
        assert "<h1" in dom and "</html>" in dom, f"{name} did not load"
        report = formula_report(dom)
        assert report["failed"] == report["katex errors"] == report["remote loads"] == 0, (name, report)
        assert report["rendered"] == report["formulas"], (name, report)
        if name.startswith(("layers/", "derivations/")):
            assert report["formulas"] >= 10, (name, report)
        total += report["rendered"]
    print(f"{total} formulas rendered, none failed")


def test_a_broken_formula_is_caught(built, tmp_path):
    # The check itself can fail: an undefined command and an unbalanced brace on a page of the built site.
    page = built / "layers" / "Conv1d.html"
    broken = page.parent / "broken.html"
    html = page.read_text(encoding="utf-8")
    first = re.search(r'<div class="arithmatex">(.*?)</div>', html, re.S)
    html = html.replace(first.group(0), r'<div class="arithmatex">\[ \undefinedcommand{x} \]</div>'
                                        r'<span class="arithmatex">\( \frac{1 \)</span>', 1)
    broken.write_text(html, encoding="utf-8")
    try:
        report = formula_report(rendered_dom(broken))
    finally:
        broken.unlink()
    assert report["failed"] == 2 and report["rendered"] == report["formulas"] - 2


def test_a_screenshot_is_kept(built):
    folder = Path(os.environ.get("SYMCONV_ARTIFACTS") or built.parent)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "site-ConvTranspose2d.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1800", (built / "layers" / "ConvTranspose2d.html").as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"\nscreenshot: {shot}")


def test_the_site_refuses_to_overwrite_a_folder_that_is_no_site(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(site.SymconvError, match="not a built site"):
        site.build_site(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"
