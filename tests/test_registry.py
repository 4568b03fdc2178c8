"""The model registry and the architecture around it: a model is one declaration,
looked up by name; nothing else switches on a model's name; declared outputs, labels
and kernel outputs agree; imports run one way; reading a cube never imports JAX."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline import load_config, parse_config
from pipeline.cli import app
from pipeline.grid import Plan, bytes_per_point, dim_sizes
from pipeline.kernels import compute_block
from pipeline.models import BUILTIN, ModelNotFound, all_models, get, names
from pipeline.run import estimate

from .conftest import ROOT

PKG = ROOT / "pipeline"

#: config hashes of the shipped configs, as the code before the registry computed them
#: (a changed hash would make every existing cube refuse to resume)
SHIPPED_HASHES = {
    "coordination_j2": "sha256:3b99d4c76023b9c524a0dac702ed5f9bd77231c6a937fb71f928831c1848be15",
    "coordination_j4": "sha256:b16d639428a10b4ec7a6b742d5f57ddc9848cd59588e60d581de6f804ac70d75",
    "dynamic": "sha256:2be9dfcecdfcc4d2cf650710077858e35cc4509a1e7df0348510bac2420d2089",
    "dynamic_map": "sha256:635bf224469818be139557f4565d93dedd6120491ce9be2d9685490d185b2cef",
    "modes": "sha256:d2b733564fe80883d08b1216533f744fb19f44b05ebb3a8b303b2cd72226c91f",
    "smoke": "sha256:1e21e3030e68fa87e31d11093a41b0b376aebd8bb72ce142bfe7b8db3a3a94df",
    "standard": "sha256:7baa2f96803aabbbd8ed73de97aa3478d009e270bc491bf56e3a6fa2951f9966",
    "standard_scale": "sha256:3e3c27c3bdbf7a2f92078910fc95b9a60b8dac8ebe5962d19aeeb8ad6a1829ef",
}


def _modules():
    for p in sorted(PKG.rglob("*.py")):
        yield p, ast.parse(p.read_text(), filename=str(p))


def _in_models(path: Path) -> bool:
    return path.parent.name == "models" or path.name == "model.py"


def test_no_switch_on_a_model_name_outside_the_model_files():
    """No comparison, membership test, dict key or match case with a model's name
    anywhere in the package but the model files and the registry."""
    model_names = set(BUILTIN) | {m.name for m in all_models()}
    found = []
    for path, tree in _modules():
        if _in_models(path):
            continue
        for node in ast.walk(tree):
            consts = []
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, (ast.Tuple, ast.List, ast.Set)):
                        consts += side.elts
                    else:
                        consts.append(side)
            elif isinstance(node, ast.Dict):
                consts += [k for k in node.keys if k is not None]
            elif isinstance(node, ast.MatchValue):
                consts.append(node.value)
            for c in consts:
                if isinstance(c, ast.Constant) and c.value in model_names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {c.value!r}")
    snake = ast.parse((ROOT / "Snakefile").read_text().replace("rule ", "def _r_").split("rule")[0])
    del snake  # the Snakefile is Python with rules: checked by text below
    text = (ROOT / "Snakefile").read_text()
    for name in model_names:
        assert f'"{name}"' not in text and f"'{name}'" not in text, f"Snakefile names {name!r}"
    assert not found, "model switches outside the model files:\n" + "\n".join(found)


def test_the_ast_test_can_fail(tmp_path):
    """The walker finds a switch when there is one (so the test above can fail)."""
    tree = ast.parse('if spec.model == "dynamic":\n    pass\nx = {"standard": 1}\n')
    hits = [
        c.value
        for node in ast.walk(tree)
        for c in (
            [node.left, *node.comparators]
            if isinstance(node, ast.Compare)
            else (node.keys if isinstance(node, ast.Dict) else [])
        )
        if isinstance(c, ast.Constant)
    ]
    assert hits == ["dynamic", "standard"]


def _config(model: str, J: int, save_paths: bool = False) -> str:
    """A small sweep of any registered model, from its own starter config."""
    from pipeline.starter import starter_config

    text = starter_config(get(model), model, J)
    text = text.replace(", 101]}", ", 5]}")
    if save_paths:
        text = text.replace("save_paths: false", "save_paths: true")
        text = text.replace("params:\n", "params:\n  T: 20.0\n  n_time: 11\n")
    return text


CASES = [(m, J, False) for m in BUILTIN for J in ((2,) if get(m).sectors else (2, 3))] + [
    ("dynamic", 2, True)
]


@pytest.mark.parametrize(("model", "J", "paths"), CASES)
def test_declaration_kernel_and_plan_agree(tmp_path, model, J, paths):
    """For every model and a few J: the kernel returns exactly the declared outputs,
    with the declared extra dims and dtypes; the labels size the equilibrium dim; and
    plan's byte estimate equals the bytes of the arrays the cube writes."""
    spec = parse_config(_config(model, J, paths), output=tmp_path / "c.zarr")
    m = spec.decl
    assert m is get(model)
    out = compute_block(spec, 0)
    declared = {o.name: o for o in m.outputs_for(spec.save_paths)}
    assert set(out) == set(declared), set(out) ^ set(declared)
    sizes = dim_sizes(spec)
    assert sizes["equilibrium"] == len(m.labels(spec.J))
    region = Plan.of(spec).region(0)
    shape = tuple(s.stop - s.start for s in region)
    for name, o in declared.items():
        assert out[name].shape == shape + tuple(sizes[d] for d in o.dims), name
        assert np.asarray(out[name]).astype(o.dtype).dtype == np.dtype(o.dtype)
    from pipeline import run
    from pipeline.store import open_cube, schema

    run(spec)
    ds = open_cube(spec.output).load()
    written = sum(ds[v].values.astype(schema(spec)[v].dtype).nbytes for v in schema(spec))
    assert estimate(spec).bytes == written == spec.n_points * bytes_per_point(spec)


def test_every_model_documents_itself():
    for m in all_models():
        assert m.name in names() or ":" in m.name
        assert m.doc.startswith("docs/models.md#")
        anchor = m.doc.split("#")[1]
        assert f"## {anchor}".lower() in (ROOT / "docs" / "models.md").read_text().lower() or (
            anchor in (ROOT / "docs" / "models.md").read_text()
        ), anchor
        assert m.claims_list and m.params and m.labels(2)
        for p in m.params:
            assert p.meaning and p.symbol and p.units, (m.name, p.name)


def test_unknown_and_out_of_tree_model_errors():
    with pytest.raises(ModelNotFound, match="choose one of standard"):
        get("nonsense")
    with pytest.raises(ModelNotFound, match="cannot import module 'no_such_module'"):
        get("no_such_module:MODEL")
    with pytest.raises(ModelNotFound, match="not a pipeline.Model"):
        get("json:dumps")


def test_shipped_config_hashes_are_stable():
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        if p.stem in SHIPPED_HASHES:
            assert load_config(p).config_hash == SHIPPED_HASHES[p.stem], p.stem


def _module_imports(path: Path, tree) -> set[str]:
    """Package modules a module imports at its top level (not inside functions)."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    pkg = parts if path.name == "__init__.py" else parts[:-1]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("pipeline"):
                mod = node.module.split(".")
            else:
                continue
            out.add(".".join(mod))
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pipeline")}
    return out


def test_imports_are_acyclic_and_models_are_at_the_bottom():
    graph = {}
    for path, tree in _modules():
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts)
        graph[name] = _module_imports(path, tree)
    known = set(graph)

    def resolve(m):  # "pipeline.store" (a package) or "pipeline.store.cube"
        return m if m in known else m.rsplit(".", 1)[0]

    graph = {k: {resolve(v) for v in vs if resolve(v) in known and resolve(v) != k}
             for k, vs in graph.items()}  # fmt: skip
    state: dict[str, int] = {}

    def visit(n, stack):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1 and not n.startswith(m + ".") and not m.startswith(n + "."):
                raise AssertionError(f"import cycle: {' -> '.join([*stack, n, m])}")
            if m not in state:
                visit(m, [*stack, n])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [])
    below = {"pipeline.models", "pipeline._jax", "pipeline.colors"}
    for n, deps in graph.items():
        if n.startswith("pipeline.models"):
            bad = {d for d in deps if not any(d == b or d.startswith(b + ".") for b in below)}
            assert not bad, f"{n} imports {bad}: models sit at the bottom"


NO_JAX = """
import sys
from pipeline.cli import app
try:
    app({args!r})
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
assert "jax" not in sys.modules, sorted(m for m in sys.modules if m.startswith("jax"))[:5]
print("ok")
"""


@pytest.fixture(scope="module")
def small_cube(tmp_path_factory):
    from pipeline import run

    from .cubes import coordination

    out = tmp_path_factory.mktemp("nojax") / "c.zarr"
    run(parse_config(coordination(9, 7), output=out))
    return out


@pytest.mark.parametrize(
    "args",
    [["--help"], ["query", "CUBE"], ["query", "CUBE", "--at", "r_1=1", "--at", "theta_1=2",
                                     "--at", "theta_2=2"], ["claims", "CUBE"], ["models"]],
    ids=["help", "query", "query-at", "claims", "models"],
)  # fmt: skip
def test_reading_a_cube_and_help_do_not_import_jax(small_cube, args):
    args = [str(small_cube) if a == "CUBE" else a for a in args]
    res = subprocess.run([sys.executable, "-c", NO_JAX.format(args=args)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_cli_models_and_new(tmp_path, monkeypatch):
    import pipeline.cli as cli_module

    # the module's console may have fixed its width when it was made (COLUMNS then)
    monkeypatch.setattr(cli_module.console, "_width", 250)
    r = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["models"])
    assert r.exit_code == 0
    for m in BUILTIN:
        assert m in r.output
    assert "theta_jN (alias theta_j)" in r.output and "JDE footnote 11" in r.output
    for m in BUILTIN:
        out = tmp_path / f"{m}.yaml"
        r = CliRunner().invoke(app, ["new", m, "-o", str(out)])
        assert r.exit_code == 0, r.output
        spec = load_config(out)  # the starter config is valid as written
        assert spec.model == m and len(spec.axes) == 2
        assert "#" in out.read_text()  # commented
    r = CliRunner().invoke(app, ["new", "coordination", "-o", str(tmp_path / "coordination.yaml")])
    assert r.exit_code == 2 and "exists" in r.output  # never overwrites
    r = CliRunner().invoke(app, ["new", "nonsense"])
    assert r.exit_code == 2 and "unknown model" in r.output


def test_version_and_completion():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("marshall ")
    r = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in r.output


def test_status_bits_from_one_enum(tmp_path):
    """The cube's CF flag_masks/flag_meanings and the CLI's decoded status text come
    from the model's IntFlag (one copy of the meanings)."""
    from pipeline.models.dynamic import STATUS_TEXT, Status
    from pipeline.store import open_cube

    from .cubes import DYNAMIC

    spec = parse_config(DYNAMIC.replace("n_time: 41", "n_time: 5"), output=tmp_path / "d.zarr")
    from pipeline import run

    run(spec)
    ds = open_cube(spec.output)
    a = ds["status"].attrs
    assert a["flag_masks"] == [int(s) for s in Status]
    assert a["flag_meanings"].split() == [s.name.lower() for s in Status]
    bits = json.loads(a["status_bits"])
    assert bits == {str(int(k)): v for k, v in STATUS_TEXT.items()}
    code = int(Status.HALF_LIFE_NOT_REACHED | Status.A_HAT_K_ZERO)
    text = ds.marshall.status_text(code)
    assert STATUS_TEXT[Status.HALF_LIFE_NOT_REACHED] in text
    assert STATUS_TEXT[Status.A_HAT_K_ZERO] in text
