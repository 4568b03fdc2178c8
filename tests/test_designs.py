"""Sampling designs: sizes, bounds, distributions, determinism, validation messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict
from scipy import stats

from pipeline import designs as D

PARAMS = {
    "r_1": {"loguniform": [0.25, 4.0]},
    "theta_1": {"uniform": [1.05, 4.0]},
    "r_2": 1.0,
    "theta_2": {"uniform": [1.05, 4.0]},
}
KINDS = [("sobol", 256), ("lhs", 200), ("random", 200), ("saltelli", 64)]


def spec(kind: str, n: int, seed: int = 7, params=PARAMS, **extra) -> D.DesignSpec:
    out = D.parse_design({kind: n, "seed": seed, **extra}, params)
    assert out is not None
    return out


def problems(design, params) -> list[tuple[str, str]]:
    with pytest.raises(D.DesignError) as err:
        D.parse_design(design, params)
    return err.value.problems


# ----------------------------------------------------------------------- sizes


@pytest.mark.parametrize("kind,n", KINDS)
def test_sizes_and_sorted_names(kind, n):
    s = spec(kind, n)
    assert s.names == ("r_1", "theta_1", "theta_2")  # sorted; the fixed r_2 is not sampled
    out = s.samples()
    assert list(out) == list(s.names)
    expected = n * (3 + 2) if kind == "saltelli" else n
    assert s.size == expected
    for v in out.values():
        assert v.dtype == np.float64 and v.shape == (expected,)


def test_saltelli_sizes_as_salib_counts_them():
    for d in (1, 2, 5):
        params = {f"x{j}": {"uniform": [0.0, 1.0]} for j in range(d)}
        first = spec("saltelli", 16, params=params)
        second = spec("saltelli", 16, params=params, second_order=True)
        assert first.size == 16 * (d + 2) == len(first.samples()["x0"])
        assert second.size == 16 * (2 * d + 2) == len(second.samples()["x0"])


def test_saltelli_rows_are_cross_sampled():
    """Each AB^j row is the base row A with column j taken from B (SALib's order)."""
    u = D.unit_samples(D.Design("saltelli", 8, 3), 3).reshape(8, 5, 3)
    A, B = u[:, 0], u[:, -1]
    for j in range(3):
        expected = A.copy()
        expected[:, j] = B[:, j]
        assert np.array_equal(u[:, 1 + j], expected)


# ---------------------------------------------------------------- distributions


@pytest.mark.parametrize("kind,n", KINDS)
def test_bounds_respected(kind, n):
    out = spec(kind, n).samples()
    for name, (a, b) in (("r_1", (0.25, 4.0)), ("theta_1", (1.05, 4.0)), ("theta_2", (1.05, 4))):
        v = out[name]
        assert np.all(v >= a) and np.all(v <= b), name
        # the points fill the range (in the distribution's own scale): near both ends
        z = np.log(v / a) / np.log(b / a) if name == "r_1" else (v - a) / (b - a)
        assert z.min() < 0.05 and z.max() > 0.95, name


@pytest.mark.parametrize("kind", ["sobol", "lhs", "random"])
def test_loguniform_is_uniform_in_log(kind):
    """ln r_1 is uniform on [ln 0.25, ln 4]; r_1 itself is not uniform on [0.25, 4]."""
    v = spec(kind, 1024).samples()["r_1"]
    z = (np.log(v) - np.log(0.25)) / (np.log(4.0) - np.log(0.25))
    assert stats.kstest(z, "uniform").pvalue > 0.05
    assert stats.kstest((v - 0.25) / 3.75, "uniform").pvalue < 1e-6
    # half the points below the geometric midpoint sqrt(0.25 * 4) = 1
    assert abs(np.mean(v < 1.0) - 0.5) < 0.05


@pytest.mark.parametrize("kind", ["sobol", "lhs", "random"])
def test_uniform_marginals(kind):
    v = spec(kind, 1024).samples()["theta_1"]
    assert stats.kstest((v - 1.05) / 2.95, "uniform").pvalue > 0.05


@pytest.mark.parametrize("kind", ["sobol", "lhs"])
def test_stratified_one_point_per_cell(kind):
    """LHS by construction, and scrambled Sobol' for n = 2^m (its balance property): each
    of the n equal cells of every coordinate holds exactly one point."""
    n = 64
    u = D.unit_samples(D.Design(kind, n, 3), 4)
    for j in range(4):
        assert sorted(np.floor(u[:, j] * n).astype(int)) == list(range(n))


def test_distribution_ppf_closed_forms():
    u = np.array([0.0, 0.25, 0.5, 0.75])
    assert np.array_equal(D.Uniform(1.0, 3.0).ppf(u), [1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(D.LogUniform(0.25, 4.0).ppf(u), [0.25, 0.5, 1.0, 2.0], rtol=1e-15)
    top = D.LogUniform(0.1, 0.3).ppf(np.nextafter(1.0, 0.0))
    assert top <= 0.3  # clipped to the support even where exp rounds up


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("kind,n", KINDS)
def test_same_seed_identical_other_seed_different(kind, n):
    a, b, c = spec(kind, n, 11).samples(), spec(kind, n, 11).samples(), spec(kind, n, 12).samples()
    for name in a:
        assert a[name].tobytes() == b[name].tobytes()  # bit for bit
        assert not np.array_equal(a[name], c[name])


def test_yaml_order_does_not_change_samples():
    reordered = dict(reversed(list(PARAMS.items())))
    a, b = spec("sobol", 128).samples(), spec("sobol", 128, params=reordered).samples()
    assert list(a) == list(b)
    for name in a:
        assert np.array_equal(a[name], b[name])


def test_unit_samples_pinned():
    """Regression pin of the generators' streams (scipy.stats.qmc, numpy PCG64, SALib):
    if a library release changes them, cubes of older releases can no longer be
    regenerated bit for bit, and the seed's meaning has changed."""
    pinned = {
        "sobol": ["0x1.70e4845800000p-1", "0x1.ef922fd000000p-1", "0x1.5e3c25c000000p-2"],
        "lhs": ["0x1.597445bf528eep-3", "0x1.de1b85edf5ddfp-1", "0x1.6a9cc2636b4e9p-2"],
        "random": ["0x1.5a0690ac7ba99p-1", "0x1.b6ef1520bd1e8p-3", "0x1.3ce0fe4145458p-2"],
        "saltelli": ["0x1.9e113c2000000p-2", "0x1.8ea1f00000000p-7", "0x1.e428265000000p-2"],
    }
    for kind, expected in pinned.items():
        u = D.unit_samples(D.Design(kind, 8, 2024), 2)
        assert [float(v).hex() for v in u[:2].ravel()[:3]] == expected, kind


def test_canonical_form():
    s = spec("saltelli", 64, second_order=True)
    c = s.canonical()
    assert c == {
        "design": {"saltelli": 64, "seed": 7, "second_order": True},
        "params": {
            "r_1": {"loguniform": [0.25, 4.0]},
            "theta_1": {"uniform": [1.05, 4.0]},
            "theta_2": {"uniform": [1.05, 4.0]},
        },
    }
    assert json.loads(json.dumps(c)) == c
    assert spec("sobol", 64).canonical()["design"] == {"sobol": 64, "seed": 7}
    assert spec("sobol", 64, 8).canonical() != spec("sobol", 64).canonical()
    reordered = dict(reversed(list(PARAMS.items())))
    dumped = json.dumps(spec("lhs", 10, params=reordered).canonical(), sort_keys=True)
    assert dumped == json.dumps(spec("lhs", 10).canonical(), sort_keys=True)


def test_accepts_the_schemas_pydantic_models():
    class Uniform(BaseModel):
        model_config = ConfigDict(extra="forbid")
        uniform: tuple[float, float]

    params = {"theta_1": Uniform(uniform=(1.5, 2.5)), "r_1": 1.0}
    s = D.parse_design({"lhs": 10, "seed": 1}, params)
    assert s.dists == {"theta_1": D.Uniform(1.5, 2.5)}
    assert D.is_distribution(params["theta_1"]) and not D.is_distribution(1.0)
    assert not D.is_distribution({"linspace": [1, 2, 3]})


# ------------------------------------------------------------------- validation


def test_grid_configs_pass_through():
    assert D.parse_design(None, {"r_1": {"linspace": [0.5, 2, 5]}, "r_2": 1.0}) is None
    assert D.parse_design("grid", {"r_1": [0.5, 1.0], "theta_1": {"logspace": [1, 2, 3]}}) is None


def test_power_of_two_rule_names_field_and_neighbours():
    (p,) = problems({"sobol": 1000, "seed": 1}, PARAMS)
    assert p[0] == "design.sobol"
    assert "power of two" in p[1] and "512 (2^9) or 1024 (2^10)" in p[1]
    (p,) = problems({"saltelli": 100, "seed": 1}, PARAMS)
    assert p[0] == "design.saltelli" and "64 (2^6) or 128 (2^7)" in p[1]
    assert spec("lhs", 1000).size == 1000  # no such rule for lhs / random
    assert spec("random", 1000).size == 1000


@pytest.mark.parametrize("seed", [7.0, "7", True, -1, None, 2**63])
def test_seed_must_be_an_integer(seed):
    (p,) = problems({"sobol": 64, "seed": seed}, PARAMS)
    assert p[0] == "design.seed" and "integer" in p[1]


def test_seed_is_required():
    (p,) = problems({"lhs": 64}, PARAMS)
    assert p == ("design.seed", p[1]) and "missing" in p[1]


@pytest.mark.parametrize(
    "value,fragment",
    [
        ({"uniform": [2.0, 1.0]}, "low < high"),
        ({"uniform": [1.0, 1.0]}, "low < high"),
        ({"uniform": [1.0, float("inf")]}, "finite"),
        ({"loguniform": [float("nan"), 2.0]}, "finite"),
        ({"loguniform": [0.0, 2.0]}, "low > 0"),
        ({"loguniform": [-1.0, 2.0]}, "low > 0"),
        ({"uniform": [1.0]}, "two numbers"),
        ({"uniform": ["a", 2]}, "two numbers"),
        ({"uniform": [1, 2], "loguniform": [1, 2]}, "one key"),
        ({"normal": [0, 1]}, "unknown distribution 'normal'"),
        ("x", "one key"),
    ],
)
def test_bad_distributions(value, fragment):
    (p,) = problems({"sobol": 64, "seed": 1}, {"r_1": value, "r_2": 1.0})
    assert p[0] == "params.r_1" and fragment in p[1], p


def test_mixing_grid_axes_and_distributions_is_an_error():
    params = {"r_1": {"loguniform": [0.25, 4.0]}, "theta_1": {"linspace": [1.5, 3, 10]}}
    (p,) = problems({"sobol": 64, "seed": 1}, params)
    assert p[0] == "params.theta_1"
    assert "linspace" in p[1] and "cannot be mixed" in p[1] and "r_1" in p[1]
    # the same without a design: the design is missing and the axis still mixed
    ps = problems(None, params | {"theta_2": [1.5, 2.0]})
    assert [f for f, _ in ps] == ["design", "params.theta_1", "params.theta_2"]
    assert "a list of values" in ps[2][1]


def test_distributions_need_a_design_and_a_design_needs_distributions():
    (p,) = problems(None, {"r_1": {"uniform": [1, 2]}, "r_2": 1.0})
    assert p[0] == "design" and "r_1 has a distribution" in p[1] and "sobol" in p[1]
    (p,) = problems({"lhs": 8, "seed": 1}, {"r_1": {"linspace": [1, 2, 3]}, "r_2": 1.0})
    assert p[0] == "design" and "params.r_1" in p[1] and "drop design" in p[1]
    (p,) = problems({"lhs": 8, "seed": 1}, {"r_1": 1.0})
    assert p[0] == "design" and "none" in p[1]


@pytest.mark.parametrize(
    "design,field,fragment",
    [
        ({"sobol": 64, "lhs": 64, "seed": 1}, "design", "exactly one"),
        ({"seed": 1}, "design", "exactly one"),
        ({"sobol": 64, "seed": 1, "n": 3}, "design.n", "unknown field"),
        ({"sobol": 64.0, "seed": 1}, "design.sobol", "integer"),
        ({"lhs": 0, "seed": 1}, "design.lhs", "at least 1"),
        ({"lhs": 8, "seed": 1, "second_order": True}, "design.second_order", "saltelli"),
        ({"saltelli": 8, "seed": 1, "second_order": "yes"}, "design.second_order", "true or"),
        ({"lhs": D.MAX_SAMPLES + 1, "seed": 1}, "design.lhs", "at most"),
        ({"saltelli": 2**22, "seed": 1}, "design.saltelli", "D + 2"),
        ("sobol", "design", "must be 'grid' or one of"),
    ],
)
def test_bad_designs(design, field, fragment):
    ps = problems(design, PARAMS)
    assert any(f == field and fragment in m for f, m in ps), ps


def test_every_problem_reported_at_once():
    ps = problems(
        {"sobol": 100, "seed": 1.5},
        {"r_1": {"loguniform": [0, 1]}, "theta_1": {"uniform": [3, 2]}, "r_2": [1, 2]},
    )
    fields = sorted(f for f, _ in ps)
    assert fields == ["design.seed", "design.sobol", "params.r_1", "params.r_2", "params.theta_1"]
    msg = str(D.DesignError(ps))
    assert msg.startswith("invalid sampling design:") and "params.theta_1" in msg
