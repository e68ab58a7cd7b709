"""Whole-model profiles, the full parameter space of the torch layers, and bad input."""

from __future__ import annotations

import csv
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
import torch

import symconv
from symconv.frontends import examples
from symconv.frontends.cli import main
from symconv.frontends.parsing import parse_layer, parse_shape

from .bruteforce import simulate


def real_calls(model: torch.nn.Module, shape: tuple[int, ...]) -> list[tuple[torch.nn.Module, tuple[int, ...]]]:
    """(leaf, input shape) of every leaf call, from a real forward pass (independent of symconv's tracer)."""
    calls = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append((mod, tuple(inp[0].shape))))
             for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(torch.zeros(shape))
    for h in hooks:
        h.remove()
    return calls


def independent_total(model: torch.nn.Module, shape: tuple[int, ...], convention: str) -> int:
    total = 0
    for module, in_shape in real_calls(model, shape):
        if isinstance(module, torch.nn.Linear):
            rows = 1
            for v in in_shape[:-1]:
                rows *= v
            per_row = module.out_features * (module.in_features if convention == "macs"
                                             else 2 * module.in_features - 1 + (module.bias is not None))
            total += rows * per_row
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            total += simulate(symconv.layer_from_module(module), in_shape, convention)
    return total


@pytest.mark.parametrize("convention", ["docs", "exact", "macs"])
@pytest.mark.parametrize("model, shape", [
    (examples.dcgan_generator(nz=16, ngf=4, nc=3), (2, 16, 1, 1)),
    (examples.unet_decoder(channels=16, classes=3), (2, 16, 5, 6)),
])
def test_profile_equals_the_sum_of_independent_layer_counts(model, shape, convention):
    result = symconv.profile(model, shape, convention)
    assert result.run == "meta"
    assert result.total() == independent_total(model, shape, convention)
    names = {m: n for n, m in model.named_modules()}
    assert [r.module for r in result.counted] == [
        names[mod] for mod, _ in real_calls(model, shape) if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d,
                                                                                torch.nn.ConvTranspose2d))]
    arithmetic = [(op, where) for op, _, where, math in result.not_counted() if math]
    assert arithmetic and all(type(model.get_submodule(n)).__name__ in ("BatchNorm2d", "ReLU", "Tanh")
                              for _, where in arithmetic for n in where)


def test_profile_leaves_the_model_as_it_was():
    model = examples.dcgan_generator(nz=8, ngf=2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    symconv.profile(model, (1, 8, 1, 1))
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(after[k].device.type == "cpu" and torch.equal(after[k], v) for k, v in before.items())
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_profile_runs_the_example_tensor_where_meta_fails():
    class NoMeta(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.ConvTranspose1d(2, 2, 3, stride=2)

        def forward(self, x):
            if x.device.type == "meta":
                raise NotImplementedError("no meta kernel")
            return self.conv(x)

    x = torch.randn(2, 5)
    result = symconv.profile(NoMeta(), x, all_conventions=True)
    assert result.run == "real values"
    spec = symconv.layer_from_module(NoMeta().conv)
    assert [result.total(c) for c in ("docs", "exact", "macs")] == [
        simulate(spec, (2, 5), c) for c in ("docs", "exact", "macs")]
    with pytest.raises(symconv.SymconvError, match="needs real values"):
        symconv.profile(NoMeta(), (2, 5))


def test_profile_exports():
    model = examples.unet_decoder(channels=8, classes=2)
    result = symconv.profile(model, (1, 8, 3, 3), "exact", all_conventions=True)
    rows = list(csv.reader(io.StringIO(result.to_csv())))
    assert rows[0][-3:] == ["exact (FLOPs)", "docs (FLOPs)", "macs (MACs)"]
    assert rows[-1][0] == "total" and int(rows[-1][-3]) == result.total("exact")
    assert rows[3][4] == "(1, 8, 3, 3)"  # shapes keep their commas
    markdown = result.to_markdown()
    assert len([line for line in markdown.splitlines() if line.startswith("|")]) == len(rows) + 1
    assert result.summary().splitlines()[0] in markdown
    latex = result.to_latex()
    assert latex.startswith(r"\begin{tabular}") and r"$\psi$" in latex
    frame = result.to_dataframe()
    assert list(frame["module"])[:3] == [r.module for r in result.records][:3]
    table = result.table()
    assert "not counted" in table and f"{result.total('exact'):,}" in table


# --- the full parameter space of the torch layers ------------------------------------------------------

def _ones_map(module: torch.nn.Module, spatial: tuple[int, ...]) -> torch.Tensor:
    """torch's own count map: the module on ones with a ones kernel, float64, one channel."""
    module = module.double()
    with torch.no_grad():
        torch.nn.init.ones_(module.weight)
        return module(torch.ones((1, 1, *spatial), dtype=torch.float64))[0, 0]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_padding_same_with_even_kernels_against_torch(ndim):
    cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[ndim]
    checked = 0
    for k, d, L in itertools.product((2, 3, 4), (1, 2), (1, 3, 6)):
        kernel = tuple(k + a for a in range(ndim))
        module = cls(1, 1, kernel, padding="same", dilation=d, bias=False)
        spatial = tuple(L + a for a in range(ndim))
        y = _ones_map(module, spatial)
        exact = symconv.count_layer(symconv.layer_from_module(module), (1, 1, *spatial), "exact")
        assert exact.output_size == tuple(y.shape)
        assert exact.multiplications == int(y.sum())
        assert exact.additions == int(y.sum()) - int(torch.count_nonzero(y))
        checked += any(ki % 2 == 0 for ki in kernel)
    assert checked > 0


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_every_padding_mode_against_torch(mode):
    # torch's acceptance too: where torch refuses the layer on the input, so does symconv.
    counted = refused = 0
    for k, p, s, d, L in itertools.product((1, 2, 3), (0, 1, 2, 4, 6), (1, 2), (1, 2), (1, 3, 5)):
        module = torch.nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False, padding_mode=mode)
        layer, shape = symconv.layer_from_module(module), (1, 1, L, L + 1)
        try:
            y = _ones_map(module, shape[2:])
        except RuntimeError:  # e.g. reflect padding wider than the input
            with pytest.raises(symconv.SymconvError):
                symconv.count_layer(layer, shape)
            refused += 1
            continue
        exact = symconv.count_layer(layer, shape, "exact")
        assert exact.multiplications == int(y.sum()), (mode, k, p, s, d, L)
        assert exact.additions == int(y.sum()) - int(torch.count_nonzero(y))
        counted += 1
    assert counted >= 60 and (refused > 0 or mode in ("zeros", "replicate"))


def test_tuples_unbatched_and_depthwise():
    module = torch.nn.ConvTranspose3d(6, 12, (2, 3, 4), stride=(1, 2, 3), padding=(0, 1, 2),
                                      output_padding=(0, 1, 2), dilation=(2, 1, 1), groups=6)
    spec = symconv.layer_from_module(module)
    for convention in ("docs", "exact", "macs"):
        assert symconv.count_ops(module, (6, 3, 4, 5), convention) == simulate(spec, (6, 3, 4, 5), convention)
        assert symconv.count_ops(module, (1, 6, 3, 4, 5), convention) == simulate(spec, (6, 3, 4, 5), convention)


# --- bad input ------------------------------------------------------------------------------------------

BAD = [
    ("Conv2d(3, 4, 3, groups=2)", "1,3,8,8", "groups=2 must divide in_channels=3 and out_channels=4"),
    ("ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)", "1,2,4,4",
     "output_padding=(2, 2) must be smaller than stride=(2, 2) or dilation=(1, 1) (axis 0)"),
    ("Conv2d(3, 4, 3)", "1,2,8,8", "input shape (1, 2, 8, 8) has 2 channels but in_channels=3"),
    ("Conv2d(3, 4, 3)", "1,3,0,8", "input shape (1, 3, 0, 8) must hold positive integers, got 0"),
    ("Conv2d(3, 4, 3)", "1,3,2.5,8", "input shape '1,3,2.5,8' has a non-integer size '2.5'"),
    ("Conv2d(3, 4, 5)", "1,3,3,8", "output size -1 < 1 on axis 0 for input size (3, 8)"),
    ("Conv5d(3, 4, 3)", "1,3,8,8", "unknown layer 'Conv5d'"),
    ("Conv2d(3, 4, 3", "1,3,8,8", "malformed layer 'Conv2d(3, 4, 3'"),
    ("Conv2d(3, 4, kernel=3)", "1,3,8,8", "Conv2d has no argument 'kernel'"),
    ("Conv2d(3, 4, 3, stride=0)", "1,3,8,8", "stride=(0, 0) must be >= 1 (axis 0)"),
    ("Conv2d(1, 1, 3, padding=9, padding_mode='reflect')", "1,1,8,8",
     "padding=(9, 9) must be smaller than input size (8, 8) with padding_mode='reflect' (axis 0)"),
    ("Conv1d(1, 1, 3, padding=9, padding_mode='circular')", "1,1,8",
     "padding=9 must not exceed input size (8,) with padding_mode='circular'"),
    ("Conv2d(3, 4, 3.5)", "1,3,8,8", "kernel_size=3.5 must be an int or a tuple of 2 ints"),
]


@pytest.mark.parametrize("layer_text, shape, message", BAD)
def test_bad_input_cli_and_api(layer_text, shape, message):
    proc = subprocess.run([sys.executable, "-m", "symconv", "count", layer_text, "--input", shape],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    with pytest.raises(symconv.SymconvError) as err:
        symconv.count_layer(parse_layer(layer_text), parse_shape(shape))
    assert message in str(err.value)


def test_cli_says_its_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"symconv {symconv.__version__}\n"


def test_profile_cli():
    out = io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(out):
        status = main(["profile", "symconv.frontends.examples:dcgan_generator", "--input", "1,100,1,1",
                       "--convention", "all", "--format", "csv"])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    model = examples.dcgan_generator()
    assert status == 0
    assert [int(v) for v in rows[-1][-3:]] == [symconv.profile(model, (1, 100, 1, 1), c).total()
                                               for c in ("docs", "exact", "macs")]


def test_profile_cli_takes_an_input_per_argument_with_its_dtype():
    path = Path(__file__).with_name("models.py")
    out = io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(out):
        status = main(["profile", f"{path}:Tokens", "--input", "2,10:int64", "--input", "2,10,8", "--format", "json",
                       "--convention", "macs"])
    report = json.loads(out.getvalue())
    assert status == 0 and report["inputs"] == [[2, 10], [2, 10, 8]] and report["totals"]["macs"] == 2 * 10 * 8 * 4
    out = io.StringIO()
    with redirect_stdout(out):  # by name, in any order
        assert main(["profile", f"{path}:Tokens", "--input", "offset=2,10,8", "--input", "ids=2,10:int64",
                     "--format", "json", "--convention", "macs"]) == 0
    report = json.loads(out.getvalue())
    assert report["input_names"] == ["offset", "ids"] and report["totals"]["macs"] == 2 * 10 * 8 * 4
    proc = subprocess.run([sys.executable, "-m", "symconv", "profile", f"{path}:Tokens", "--input", "2,10:int65",
                           "--input", "2,10,8"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "'int65' is not a torch dtype" in proc.stderr


def test_profile_cli_passes_options_by_name(capsys):
    path = Path(__file__).with_name("models.py")
    command = ["profile", f"{path}:Switched", "--input", "x=2,3,9,9", "--option", "mode=large", "--option",
               "scale=0.5", "--option", "cache={}", "--format", "json", "--convention", "exact"]
    assert main(command) == 0
    report = json.loads(capsys.readouterr().out)
    large = simulate(symconv.Layer.make("Conv2d", 3, 4, 5, padding=1), (2, 3, 9, 9), "exact")
    assert report["totals"]["exact"] == large and report["input_names"] == ["x", "mode", "scale", "cache"]
    assert report["inputs"] == [[2, 3, 9, 9], "'large'", "0.5", "{}"]
    for tail, message in ((["x=2,3,9,9", "--option", "x=1"], "'x' is given both by --input and by --option"),
                          (["x=2,3,9,9", "--option", "mode"], "--option 'mode' must be NAME=VALUE"),
                          (["2,3,9,9", "--option", "mode=large"], "give the inputs by name too")):
        assert main(["profile", f"{path}:Switched", "--input", *tail]) == 2
        assert message in capsys.readouterr().err


def test_a_plot_is_written_only_once_every_check_has_passed(tmp_path, capsys):
    # the plot's size range was read only when drawing: after the formulas were printed, or after the PNG was written
    # where --depth was then refused; an empty range read "no size in 5:1 is inside the domain: " and a zero step
    # raised range()'s ValueError; --sizes without --plot was ignored; "wrote" came on stdout, before the JSON
    png = tmp_path / "cost.png"
    dcgan = ["profile", "symconv.frontends.examples:dcgan_generator", "--input", "1,100,H,H", "--plot", str(png)]
    conv = ["count", "Conv2d(3, 4, 3)", "--input", "1,3,H,W", "--plot", str(png)]
    refused = [
        (dcgan + ["--sizes", "5:1"], "--sizes '5:1' must have 1 <= START <= STOP and a STEP of at least 1"),
        (dcgan + ["--sizes", "1:9:0"], "--sizes '1:9:0' must have 1 <= START <= STOP and a STEP of at least 1"),
        (dcgan + ["--sizes", "1:9:2:3"], "--sizes '1:9:2:3' must be START:STOP or START:STOP:STEP (integers)"),
        (dcgan + ["--depth", "-1"], "depth=-1 must be a whole number >= 0"),
        (conv + ["--sizes", "1:2"], "no size from 1 to 2 is inside the domain: H >= 3, W >= 3"),
        (conv[:-2] + ["--sizes", "1:9"], "--sizes sets the input sizes --plot spans: give --plot FILE too"),
        (["count", "Conv2d(3, 4, 3)", "--input", "1,3,8,8", "--plot", str(png)], "give sizes as names"),
    ]
    for argv, message in refused:
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and message in err and not png.exists(), argv
    assert main(dcgan + ["--sizes", "1:8", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    total = symconv.profile(examples.dcgan_generator(), (1, 100, 4, 4)).total()
    assert sympy.sympify(json.loads(out)["totals"]["docs"]).subs("H", 4) == total and err == f"wrote {png}\n"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(conv + ["--sizes", "3:9"]) == 0 and capsys.readouterr().err == f"wrote {png}\n"


def test_profile_cli_imports_the_modules_beside_the_users_code(tmp_path, monkeypatch, capsys):
    # a model file importing a module beside it, and a module of the working folder named MODULE:ATTR, failed with
    # "No module named ...": the console script has neither folder on sys.path, as python file.py and python -m do
    project = tmp_path / "project"
    project.mkdir()
    (project / "symconv_test_sibling_blocks.py").write_text(
        "import torch.nn as nn\n\n\ndef block():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())\n")
    (project / "symconv_test_sibling_model.py").write_text(
        "from symconv_test_sibling_blocks import block\n\n\ndef build():\n    return block()\n")
    expected = symconv.count_layer(symconv.Layer.make("Conv2d", 3, 4, 3), (1, 3, 8, 8), "exact").total
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])  # as the console script has it
    path, before = list(sys.path), set(sys.modules)
    monkeypatch.chdir(tmp_path)  # the file by its path, from another folder
    assert main(["profile", "project/symconv_test_sibling_model.py:build", "--input", "1,3,8,8", "--convention",
                 "exact", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["exact"] == expected and sys.path == path
    for name in set(sys.modules) - before:  # imported afresh below, as a module of the working folder
        if name.startswith(("symconv_test_sibling", "symconv_user_model")):
            del sys.modules[name]
    monkeypatch.chdir(project)
    assert main(["profile", "symconv_test_sibling_model:build", "--input", "1,3,8,8", "--convention", "exact",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["exact"] == expected and sys.path == path
    for name in ("symconv_test_sibling_blocks", "symconv_test_sibling_model"):
        sys.modules.pop(name, None)


def test_profile_cli_runs_a_script_that_parses_its_command_line_on_import(tmp_path, capsys):
    # the script's parse_args() read symconv's own arguments and exited, printing a usage that looked like
    # symconv's; now it reads a command line of its own name only (its defaults), and an exit is one line naming it
    script = "import argparse\nimport torch.nn as nn\n\nparser = argparse.ArgumentParser()\n{}\nargs = " \
             "parser.parse_args()\n\n\ndef build():\n    return nn.Conv2d(3, 4, args.kernel)\n"
    (tmp_path / "train.py").write_text(script.format('parser.add_argument("--kernel", type=int, default=3)'))
    (tmp_path / "needs.py").write_text(script.format('parser.add_argument("--kernel", type=int, required=True)'))
    argv = list(sys.argv)
    assert main(["profile", f"{tmp_path / 'train.py'}:build", "--input", "1,3,8,8", "--convention", "exact",
                 "--format", "json"]) == 0
    expected = symconv.count_layer(symconv.Layer.make("Conv2d", 3, 4, 3), (1, 3, 8, 8), "exact").total
    assert json.loads(capsys.readouterr().out)["totals"]["exact"] == expected and sys.argv == argv
    assert main(["profile", f"{tmp_path / 'needs.py'}:build", "--input", "1,3,8,8"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "the following arguments are required: --kernel" in err[-2] and err[-1] == (
        f"symconv profile: error: importing {str(tmp_path / 'needs.py')!r} failed: the code exited (SystemExit: 2); "
        f"keep a script's command line under if __name__ == '__main__':")
    assert sys.argv == argv


@pytest.mark.parametrize("target, message", [
    ("symconv.frontends.examples:nothing", "has no attribute 'nothing'"),
    ("no_such_module:model", "cannot import 'no_such_module'"),
    ("symconv.frontends.examples", "must be written MODULE:ATTR"),
])
def test_profile_cli_bad_models(target, message):
    proc = subprocess.run([sys.executable, "-m", "symconv", "profile", target, "--input", "1,100,1,1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_profile_rejects_a_shape_the_model_cannot_take():
    with pytest.raises(symconv.SymconvError, match="channels"):
        symconv.profile(examples.dcgan_generator(nz=8, ngf=2), (1, 9, 1, 1))


def test_count_ops_does_not_run_the_module():
    class Exploding(torch.nn.ConvTranspose2d):
        def forward(self, x):
            raise AssertionError("count_ops ran the module")

    module = Exploding(2, 2, 4, stride=2, padding=1)
    assert symconv.count_ops(module, (1, 2, 4, 4), "exact") == simulate(symconv.layer_from_module(module),
                                                                       (1, 2, 4, 4), "exact")



@pytest.mark.parametrize("error", [RuntimeError("a bug"), ValueError("a bug that is not bad input")])
def test_cli_reports_bugs_with_their_traceback(monkeypatch, error):
    import symconv.numeric.layer_counts as layer_counts

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(layer_counts, "count_layer", broken)
    with pytest.raises(type(error), match="a bug"):
        main(["count", "Conv1d(1, 1, 1)", "--input", "1,1,4"])


def test_every_bad_input_is_a_symconv_error():
    assert issubclass(symconv.SymconvError, ValueError)
    for text, shape, _ in BAD:
        with pytest.raises(symconv.SymconvError):
            symconv.count_layer(parse_layer(text), parse_shape(shape))
