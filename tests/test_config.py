"""Config validation: every bad input gets a message naming the field, and nothing is
written (checked through the CLI, which is what a user runs)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline import ConfigError, load_config, parse_config
from pipeline.cli import app

GOOD = """\
model: coordination
sectors: 2
params:
  r_1: {logspace: [0.25, 4.0, 9]}
  r_2: 1.0
  theta_1: {linspace: [1.05, 4.0, 5]}
  theta_2: [1.5, 2.0, 3.0]
chunks: {r_1: 4}
output: OUT
"""


def test_good_config_axes_and_fixed(tmp_path):
    spec = parse_config(GOOD.replace("OUT", str(tmp_path / "c.zarr")))
    assert spec.dims == ("r_1", "theta_1", "theta_2")
    np.testing.assert_array_equal(spec.axes[0].values, np.geomspace(0.25, 4.0, 9))
    np.testing.assert_array_equal(spec.axes[1].values, np.linspace(1.05, 4.0, 5))
    assert spec.axes[0].spacing == "log" and spec.axes[2].values.tolist() == [1.5, 2.0, 3.0]
    assert spec.fixed == {"r_2": 1.0}
    assert spec.chunks[0] == 4 and spec.n_points == 9 * 5 * 3
    # the hash ignores formatting but not values
    same = parse_config(GOOD.replace("OUT", str(tmp_path / "c.zarr")).replace("r_2: 1.0", "r_2: 1"))
    assert same.config_hash == spec.config_hash
    other = parse_config(GOOD.replace("OUT", "x").replace("r_2: 1.0", "r_2: 1.1"))
    assert other.config_hash != spec.config_hash


BAD = [
    ("model: coordination", "model: nonsense", "model", "unknown model"),
    ("r_2: 1.0", "r_2: 1.0\n  zeta_1: 2.0", "params.zeta_1", "unknown parameter"),
    ("r_2: 1.0", "r_2: 1.0\n  theta_3: 2.0", "params.theta_3", "sector 3 > sectors: 2"),
    ("  r_2: 1.0\n", "", "params.r_2", "missing"),
    ("theta_2: [1.5, 2.0, 3.0]", "theta_2: 0.9", "params.theta_2", "must be > 1"),
    ("theta_2: [1.5, 2.0, 3.0]", "theta_2: [0.5, 2.0]", "params.theta_2", "must be > 1"),
    ("r_2: 1.0", "r_2: -1.0", "params.r_2", "must be > 0"),
    ("r_2: 1.0", "r_2: 0", "params.r_2", "must be > 0"),
    ("theta_2: [1.5, 2.0, 3.0]", "theta_2: []", "params.theta_2", "empty axis"),
    ("theta_2: [1.5, 2.0, 3.0]", "theta_2: [2.0, 1.5]", "params.theta_2", "strictly increasing"),
    ("{linspace: [1.05, 4.0, 5]}", "{linspace: [4.0, 1.05, 5]}", "params.theta_1", "start < stop"),
    ("{linspace: [1.05, 4.0, 5]}", "{linspace: [1.05, 4.0, 0]}", "params.theta_1", "n >= 1"),
    ("r_2: 1.0", "r_2: .nan", "params.r_2", "finite"),
    ("r_2: 1.0", "r_2: .inf", "params.r_2", "finite"),
    ("r_2: 1.0", "r_2: one", "params.r_2", "must be a number"),
    ("chunks: {r_1: 4}", "chunks: {r_2: 4}", "chunks.r_2", "not a swept parameter"),
    ("sectors: 2", "sectors: 1", "sectors", "between 2 and"),
    ("output: OUT", "outptu: OUT", "outptu", "unknown field"),
]


@pytest.mark.parametrize(("old", "new", "field", "msg"), BAD)
def test_bad_config_names_the_field_and_writes_nothing(tmp_path, old, new, field, msg):
    out = tmp_path / "c.zarr"
    assert old in GOOD
    text = GOOD.replace(old, new, 1).replace("OUT", str(out))
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    fields = [f for f, _ in exc.value.problems]
    assert field in fields, exc.value.problems
    assert any(msg in m for f, m in exc.value.problems if f == field), exc.value.problems
    res = CliRunner().invoke(app, ["run", str(cfg), "--workers", "0"])
    assert res.exit_code == 2
    assert field in res.output and "Nothing was written" in res.output
    assert list(tmp_path.iterdir()) == [cfg]  # no store, no lock, no partial


@pytest.mark.parametrize(
    ("text", "field", "msg"),
    [
        (
            "model: modes\nparams: {r_1: 1, r_2: 1, beta: 1.5, alpha: 1, theta_1: 2, theta_2: 2}\n"
            "output: o.zarr",
            "params.beta",
            "must be < 1",
        ),
        (
            "model: modes\nparams: {r_1: 1, r_2: 1, beta: 0.5, alpha: 0.1, Lbar_1: 2, theta_2: 2}\n"
            "output: o.zarr",
            "params.Lbar_1",
            "theta_1 = beta + alpha Lbar_1 must be > 1",
        ),
        ("model: standard\nparams: {r_1: 1, r_2: 1}\noutput: o.zarr", "params.theta", "missing"),
        (
            "model: standard\nparams: {r_1: 1, r_2: 1, theta: 2, L_S: 3}\noutput: o.zarr",
            "params.L_S",
            "needs the cluster size",
        ),
        (
            "model: standard\nparams: {r_1: 1, lam_1S: 2, lam_1N: 1, r_2: 1, theta: 2}\n"
            "output: o.zarr",
            "params.r_1",
            "not both",
        ),
        (
            "model: coordination\nparams: {lam_1S: 2, r_2: 1, theta_1: 2, theta_2: 2}\n"
            "output: o.zarr",
            "params.r_1",
            "lam_1N",
        ),
        ("model: [unclosed\n", "yaml", "malformed YAML"),
        ("base: &b {r_1: 1}\nmodel: coordination\nparams: *b\noutput: o.zarr", "yaml", "aliases"),
        ("- just\n- a list\n", "config", "mapping"),
    ],
)
def test_cross_field_and_syntax_errors(text, field, msg):
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert any(f == field and msg in m for f, m in exc.value.problems), exc.value.problems


def test_all_problems_reported_at_once():
    text = (
        GOOD.replace("OUT", "o.zarr")
        .replace("r_2: 1.0", "r_2: -1")
        .replace("theta_2: [1.5, 2.0, 3.0]", "theta_2: 0.5")
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert {"params.r_2", "params.theta_2"} <= {f for f, _ in exc.value.problems}


def test_lam_pairs_and_alpha_Lbar_resolve():
    from pipeline.kernels import compute_block

    spec = parse_config(
        "model: standard\nparams: {lam_1S: 2, lam_1N: 1, lam_2S: {linspace: "
        "[1, 6, 6]}, lam_2N: 1, alpha: 0.5, Lbar: 2}\noutput: o.zarr"
    )
    out = compute_block(spec, 0)
    # r_1 = 2, theta = 1 + 0.5 * 2 = 2: B1 (c <= 2) for r_2 <= 4, C2 for r_2 >= 2
    assert out["exists"][:, 0].tolist() == [True, True, True, True, False, False]
    assert out["exists"][:, 1].tolist() == [False, True, True, True, True, True]


def test_every_shipped_config_is_valid():
    from pathlib import Path

    for p in sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml")):
        spec = load_config(p)
        assert spec.n_points > 0, p


# ------------------------------------------------- documented ranges of every model

_BASES = {
    "dynamic": {"r_1": 1, "r_2": 0.8, "theta_1": 2, "theta_2": 2, "g": 0.02, "eps": 0.1},
    "standard": {"r_1": 1, "r_2": 1.2, "theta": 2},
    "modes": {"r_1": 1, "r_2": 1, "beta": 0.5, "alpha": 0.2, "theta_1": 2, "theta_2": 2},
    "asymmetric": {"r_1": 1, "r_2": 1, "theta_1N": 2, "theta_2N": 2, "theta_1S": 2,
                   "theta_2S": 2},
    "coordination": {"r_1": 1, "r_2": 1, "theta_1": 2, "theta_2": 2},
}  # fmt: skip


def _config(model, **changes):
    """YAML text of a small config of ``model`` with ``changes`` (None: drop the key)."""
    import yaml

    params = dict(_BASES[model], **changes)
    params = {k: v for k, v in params.items() if v is not None}
    return yaml.safe_dump({"model": model, "params": params, "output": "o.zarr"})


@pytest.mark.parametrize(
    ("model", "changes", "field", "msg"),
    [
        ("coordination", {"r_2": 1e308}, "params.r_2", "must be <= 1e+06"),
        ("coordination", {"r_2": 1e-7}, "params.r_2", "must be >= 1e-06"),
        ("coordination", {"r_2": 5e-324}, "params.r_2", "must be >= 1e-06"),
        ("coordination", {"theta_2": 1e7}, "params.theta_2", "must be <= 1e+06"),
        ("coordination", {"r_2": {"logspace": [1e-8, 1, 5]}}, "params.r_2", "[1e-06, 1e+06]"),
        ("standard", {"r_1": None, "lam_1S": 1e-7, "lam_1N": 1}, "params.lam_1S",
         "must be >= 1e-06"),
        ("standard", {"r_1": None, "lam_1S": 1e-4, "lam_1N": 1e4}, "params.lam_1S",
         "r_1 = lam_1S / lam_1N must be in [1e-06, 1e+06]"),
        ("standard", {"theta": None, "alpha": 1e-7, "Lbar": 2}, "params.alpha",
         "must be >= 1e-06"),
        ("standard", {"theta": None, "alpha": 1, "Lbar": 2e6}, "params.Lbar", "must be <= 1e+06"),
        ("standard", {"theta": None, "alpha": 1, "Lbar": 2, "L_S": 1e-9}, "params.L_S",
         "must be >= 1e-06"),
        ("modes", {"beta": 1e-9}, "params.beta", "must be >= 1e-06"),
        ("asymmetric", {"theta_2S": 1e7}, "params.theta_2S", "must be <= 1e+06"),
        ("dynamic", {"rho": 5e-324}, "params.rho", "must be >= 1e-06"),
        ("dynamic", {"rho": 1e7}, "params.rho", "must be <= 1e+06"),
        ("dynamic", {"eps": 1e-13}, "params.eps", "must be >= 1e-12"),
        ("dynamic", {"g": 11.0}, "params.g", "must be <= 10"),
        ("dynamic", {"g": None, "eps": None, "g_1": 0.02, "g_2": 0.02, "eps_1": 0.1,
                     "eps_2": 20.0}, "params.eps_2", "must be <= 10"),
        ("dynamic", {"T": 1e5}, "params.T", "must be <= 10000"),
        ("dynamic", {"T": 1e-5}, "params.T", "must be >= 0.001"),
        ("dynamic", {"n_time": 1e6}, "params.n_time", "must be <= 100001"),
        ("dynamic", {"Tc": 1e-9}, "params.Tc", "must be 0 or >= 1e-06"),
        ("dynamic", {"Tc": 2e4}, "params.Tc", "must be <= 10000"),
        ("dynamic", {"eps": {"linspace": [0.1, 5, 3]}, "T": 400}, "params.T",
         "eps T must be <= 1000"),
        ("dynamic", {"eps": 5.0}, "params.eps", "eps T must be <= 1000"),  # T's default 400
    ],
)  # fmt: skip
def test_values_outside_the_documented_range_are_refused(model, changes, field, msg):
    """Every model refuses values its kernels do not compute accurately (subnormals,
    1e308, ...), naming the field and its documented range."""
    with pytest.raises(ConfigError) as exc:
        parse_config(_config(model, **changes))
    assert any(f == field and msg in m for f, m in exc.value.problems), exc.value.problems


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        ("dynamic", {"rho": 1e-6, "T": 1e4, "eps": 0.1, "g": 1e-12, "Tc": 0}),
        ("dynamic", {"rho": 1e6, "T": 1e-3, "Tc": 1e4, "n_time": 100001}),
        ("dynamic", {"eps": 10, "g": 9.99, "T": 100, "Tc": 1e-6}),
        ("dynamic", {"Tc": {"linspace": [0, 10, 11]}, "rho": {"logspace": [1e-6, 1e6, 3]}}),
        ("coordination", {"r_1": 1e-6, "r_2": 1e6, "theta_1": 1e6}),
        ("standard", {"L_S": float("inf"), "theta": None, "alpha": 1e-6, "Lbar": 1e6}),
        ("standard", {"r_1": None, "lam_1S": 1e-3, "lam_1N": 1e3}),
    ],
)  # fmt: skip
def test_the_ends_of_the_documented_ranges_are_accepted(model, changes):
    parse_config(_config(model, **changes))


def test_documented_ranges_are_listed():
    """``marshall models`` shows each parameter's documented range (Param.bounds_text)."""
    from pipeline.models import get

    dyn = get("dynamic")
    text = {p.name: p.bounds_text() for p in dyn.params}
    assert text["r_{j}"] == "[1e-06, 1e+06]" and text["theta_{j}"] == "(1, 1e+06]"
    assert text["g"] == "[1e-12, 10]" and text["rho"] == "[1e-06, 1e+06]"
    assert text["Tc"] == "0 or [1e-06, 10000]" and text["T"] == "[0.001, 10000]"
    assert {p.name: p.bounds_text() for p in get("modes").params}["beta"] == "[1e-06, 1)"
    assert {p.name: p.bounds_text() for p in get("standard").params}["L_S"] == "[1e-06, inf]"
