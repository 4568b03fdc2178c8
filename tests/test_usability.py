"""Issue 20: results that read right. Each test failed before its fix.

- the dynamic kernel flags the knife-edge path ``0 <= 0`` (every ``a_hat`` 0);
- sensitivity under ``given`` warns where the inputs become dependent;
- a refined cube's regime shares are shares of area (the finest grid) by default;
- regime colours stay distinguishable; pv_gain colour limits are robust;
- starter and demo configs say what they sweep and sit off knife edges;
- the Mill test of ``standard`` is C2's existence, and it can fail.
"""

from __future__ import annotations

import numpy as np
import pytest

# ------------------------------------------------------------- 11: dynamic knife path


@pytest.mark.parametrize("save_paths", [True, False])
def test_every_a_hat_zero_is_a_knife_edge_path(save_paths):
    """Every ``a_hat`` 0 (``eps <= g`` in both sectors): ``x_k`` stays 0, so the path's
    least wage and the best alternative ``r_m a_hat_m / theta_m`` are both 0 and the
    path condition holds with equality, ``0 <= 0``: feasible, with status bit 64 (as
    every equality, docs/models.md#knife-edge-points). With ``a_hat_2 = 1/2`` the
    alternative to target 1 is positive and target 1's wage 0: infeasible, no flag;
    target 2 pays more than an alternative of 0: feasible, no flag."""
    import jax

    from pipeline.models import dynamic as dyn

    transition = jax.jit(dyn.transition, static_argnames=("T", "n_time", "save_paths"))
    r, theta = np.array([[1.0, 0.5]] * 3), np.full((3, 2), 2.0)
    g = np.array([[0.2, 0.1], [0.1, 0.1], [0.2, 0.05]])
    eps = np.full((3, 2), 0.1)  # a_hat: (0, 0); (0, 0) with eps = g; (0, 0.5)
    out = transition(r, theta, g, eps, np.full(3, 0.05), np.zeros(3), T=40.0, n_time=5,
                     save_paths=save_paths)  # fmt: skip
    out = {k: np.asarray(v) for k, v in out.items()}
    st = out["status"]
    assert out["path_feasible"][:2].all()
    assert (st[:2] & dyn.PATH_KNIFE).all(), st
    assert not out["path_feasible"][2, 0] and out["path_feasible"][2, 1]
    assert not (st[2] & dyn.PATH_KNIFE).any(), st


# ------------------------------------------------------- 22: the Mill test, g = 0


def _standard_point(r_1, r_2, theta, theta_S):
    from pipeline.models import standard
    from pipeline.models._spec import NUMPY, evaluate

    inp = {k: np.float64(v) for k, v in dict(r_1=r_1, r_2=r_2, theta=theta,
                                              theta_S=theta_S).items()}  # fmt: skip
    return standard, NUMPY, inp, evaluate(standard.MODEL, NUMPY, standard.LABELS, inp)


@pytest.mark.parametrize(("r_2", "held"), [(1.5, 1), (0.8, 1)])
def test_mill_claim_is_the_existence_of_c2(r_2, held):
    """The claim ``CA`` is MODEL.md's Mill test (section 8.3: ``tau_min[C2] = 0``, C2
    exists without protection) against CA (``c > 1``), and it is checked also where
    C2 does not exist (``c = 0.8``: B1 alone, the Mill test fails as CA does)."""
    std, _, _, out = _standard_point(1.0, r_2, 2.0, 2.0)
    i = [c.label for c in std.MODEL.claims_list].index("CA")
    assert "C2 exists" in std.MODEL.claims_list[i].text
    assert int(out["claims"][i]) == held  # 1 held (checked), not -1 (not applicable)


def test_mill_claim_can_fail():
    """A kernel that got C2's existence wrong (C2 said to exist at ``c = 0.8 < 1``, or
    not to exist at ``c = 1.5``) fails the claim; the old statement (``w(C2) > w(B1)
    iff c > 1`` where both exist) compared ``r_2`` with ``r_1`` and held whatever the
    existence. And where South's scale binds (``theta_S < theta``) the Mill test
    needs ``c >= theta / theta_S`` (here 4/3): at ``c = 1.2`` CA holds but C2 does not
    exist, which is why the claim is checked only at ``theta_S = theta``."""
    for r_2 in (0.8, 1.5):
        std, ops, inp, out = _standard_point(1.0, r_2, 2.0, 2.0)
        e = std.MODEL.economy(ops, **inp)
        bad = dict(out, exists=np.array(out["exists"]).copy())
        bad["exists"][1] = ~bad["exists"][1]
        bad["exists"][0] = True  # both corners "exist"
        codes = std.claims(ops, inp, bad, e["aux"])
        assert int(codes[1]) == 0, (r_2, codes)  # checked and failed
    _, _, _, small = _standard_point(1.0, 1.2, 2.0, 1.5)  # theta_S / theta = 3/4
    assert not small["exists"][1] and 1.2 > 1.0  # CA, yet the Mill test fails
    assert int(small["claims"][1]) == -1  # not checked where scale binds


def test_docs_and_config_agree_on_g_and_eps_zero():
    """MODEL.md section 5 has ``g_j > 0``, ``eps_j > 0`` and a config refuses 0; the
    docs must not describe what a sweep gives at ``g = 0`` as if a config could ask
    for it: every mention of a zero rate says that a config refuses it, or that only
    the kernel called directly takes it."""
    import re
    from pathlib import Path

    from pipeline import ConfigError, parse_config

    for name in ("g", "eps"):
        text = (
            "model: dynamic\nsectors: 2\nparams:\n  r_1: 1.4\n  r_2: 1.0\n  theta_1: 1.5\n"
            f"  theta_2: 3.0\n  g: {0 if name == 'g' else 0.02}\n"
            f"  eps: {0 if name == 'eps' else 0.05}\noutput: x.zarr\n"
        )
        with pytest.raises(ConfigError, match=f"params.{name}"):
            parse_config(text)
    docs = (Path(__file__).parents[1] / "docs" / "models.md").read_text()
    zero = re.compile(r"`(g|eps)(_[jk])? = 0`|`(g|eps)`, `(g|eps)` 0 or")
    paragraphs = re.split(r"\n\s*\n", docs)
    for par in paragraphs:
        for line in par.splitlines():
            if zero.search(line):
                assert "refuse" in par or "refuse" in line, line


# ------------------------------------------------------ 14: sensitivity under given


def _coordination_sample(n=4000, seed=3):
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "r_1": np.exp(rng.uniform(np.log(0.25), np.log(4.0), n)),
            "r_2": np.exp(rng.uniform(np.log(0.25), np.log(4.0), n)),
            "theta_1": rng.uniform(1.05, 4.0, n),
            "theta_2": rng.uniform(1.05, 4.0, n),
        }
    )
    # coordination, J = 2: B1+C1+C2 holds where r_1 / r_2 <= theta_1 (C2) and
    # r_2 / theta_2 < r_1 / theta_1 (B1 the better baseline)
    regime = (X.r_1 / X.r_2 <= X.theta_1) & (X.r_2 / X.theta_2 < X.r_1 / X.theta_1)
    return X, regime.to_numpy()


def test_sensitivity_given_a_regime_warns_that_inputs_are_dependent():
    """The README's old example: ``w(C1) = r_1`` in the regime ``B1+C1+C2``. The regime
    makes ``r_1`` and ``r_2`` dependent (Spearman ~ +0.8), so the delta analysis
    credits ``r_2``, which ``w(C1)`` does not depend on; the result says so, naming the
    pair and its correlation. A box (``theta_1 > 2``) keeps the inputs independent:
    no warning."""
    from pipeline import analysis as A

    X, regime = _coordination_sample()
    y = X["r_1"].to_numpy()  # w(C1) = r_1
    res = A.sensitivity(X, y, method="delta", design="random", given=regime,
                        num_resamples=10)  # fmt: skip
    assert res.loc["r_2", "S1"] > 0.3  # the misleading credit itself
    (text,) = res.attrs["warnings"]
    dep = res.attrs["dependence"].set_index(["a", "b"])
    rho = dep.loc[("r_1", "r_2"), "spearman"]
    assert 0.7 < rho < 0.9 and dep.loc[("r_1", "r_2"), "dependent"]
    assert f"r_1 ~ r_2 {rho:+.2f}" in text and "dependent" in text
    box = A.sensitivity(X, y, method="pawn", design="random",
                        given=X["theta_1"].to_numpy() > 2, num_resamples=10)  # fmt: skip
    assert box.attrs["warnings"] == [] and not box.attrs["dependence"]["dependent"].any()
    # no subset, no check (a design's inputs are independent by construction)
    assert A.sensitivity(X, y, method="delta", design="random", num_resamples=10
                         ).attrs["warnings"] == []  # fmt: skip


def test_dependence_threshold_is_what_independent_inputs_exceed_rarely():
    """Spearman's rho of independent inputs has variance 1/(n - 1); the bound
    ``z_{1 - 0.01/(2m)} / sqrt(n - 1)`` flags some pair of 4 independent inputs in at
    most about 1% of samples (here 400 samples of 150 points), and flags a real
    dependence of 0.3 at that size nearly always."""
    from pipeline import analysis as A

    rng = np.random.default_rng(0)
    n, trials = 150, 400
    assert A.dependence_threshold(n, 6) == pytest.approx(3.1437 / np.sqrt(n - 1), rel=1e-3)
    false = sum(A.input_dependence(rng.random((n, 4)))["dependent"].any() for _ in range(trials))
    assert false / trials <= 0.03
    hits = 0
    for _ in range(50):
        z = rng.standard_normal((n, 2))
        x = np.column_stack([z[:, 0], 0.45 * z[:, 0] + np.sqrt(1 - 0.45**2) * z[:, 1]])
        hits += bool(A.input_dependence(x)["dependent"].any())
    assert hits >= 45


def test_cli_sensitivity_prints_the_dependence_warning(tmp_path):
    import json

    from typer.testing import CliRunner

    from pipeline import parse_config, run
    from pipeline.cli import app

    text = (
        "model: coordination\nsectors: 2\ndesign: {random: 1500, seed: 5}\nparams:\n"
        "  r_1: {loguniform: [0.25, 4.0]}\n  r_2: {loguniform: [0.25, 4.0]}\n"
        "  theta_1: {uniform: [1.05, 4.0]}\n  theta_2: {uniform: [1.05, 4.0]}\n"
        "output: x.zarr\n"
    )
    run(parse_config(text, output=tmp_path / "d.zarr"))
    args = ["sensitivity", str(tmp_path / "d.zarr"), "--output",
            "wage.sel(equilibrium='C1')", "--given", "regime == 'B1+C1+C2'",
            "--method", "delta", "--resamples", "10"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "r_1 ~ r_2 +0." in res.output
    res = CliRunner().invoke(app, args + ["--format", "json"])
    out = json.loads(res.stdout[res.stdout.index("{") :])
    assert any("r_1 ~ r_2" in w for w in out["warnings"])


# ------------------------------------------------- 15: refined cubes' regime shares

REFINED = """model: coordination
sectors: 2
params:
  r_1: {logspace: [0.25, 8.0, 9]}
  r_2: 1.0
  theta_1: {linspace: [1.05, 6.0, 7]}
  theta_2: 2.0
%s
output: x.zarr
"""


@pytest.fixture(scope="module")
def refined_pair(tmp_path_factory):
    """A refined coordination cube (3 levels) in a results directory, and the dense
    sweep of its finest grid (65 x 49)."""
    from pipeline import open_cube, parse_config, run

    tmp = tmp_path_factory.mktemp("refined")
    ref = parse_config(REFINED % "refine: {on: [regime], levels: 3}",
                       output=tmp / "results" / "cubes" / "ref.zarr")  # fmt: skip
    text = REFINED.replace("0, 9]}", "0, 65]}").replace("0, 7]}", "0, 49]}")
    dense = parse_config(text % "", output=tmp / "dense.zarr")
    run(ref)
    run(dense)
    return tmp, open_cube(ref.output), open_cube(dense.output)


def test_refined_regime_shares_are_shares_of_area(refined_pair):
    """A refined sweep crowds its computed points near boundaries: their shares are not
    the regimes' areas. ``regime_share()`` gives the area (the finest grid, as the
    dense sweep of it gives, exactly), says so, and ``of="points"`` the other."""
    import pipeline.query  # noqa: F401

    _, ref, dense = refined_pair
    area, pts, truth = (ref.marshall.regime_share(), ref.marshall.regime_share(of="points"),
                        dense.marshall.regime_share())  # fmt: skip
    assert int(dense["knife_edge"].sum()) == 0
    np.testing.assert_array_equal(area.to_numpy(), truth.reindex(area.index).to_numpy())
    assert area.name == "share of area (finest grid)" and area.attrs["of"] == "area"
    assert pts.name == "share of computed points" and area.attrs["counted"] == 65 * 49
    assert pts.attrs["counted"] == int(ref["computed"].sum()) < 65 * 49
    assert (area - pts).abs().max() > 0.05  # e.g. B2+C2: 20.0% of the area, 13.8% of points
    by_a = ref.marshall.regime_share(by="theta_1", where="r_1 > 1")
    by_d = dense.marshall.regime_share(by="theta_1", where="r_1 > 1")
    np.testing.assert_array_equal(by_a.to_numpy(), by_d[by_a.columns].to_numpy())
    assert by_a.attrs["caption"] == "share of area (finest grid)"


def test_report_says_which_share_a_table_shows(refined_pair):
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.report import build_report

    tmp, ref, dense = refined_pair
    truth = dense.marshall.regime_share()
    text = build_report(tmp / "results", tmp / "report.md")
    assert "| regime | share of area (finest grid) | finest-grid points |" in text
    assert "Shares of the area" in text
    for name, v in truth.items():
        assert f"| {name} | {v:.2%} | {round(v * 65 * 49)} |" in text
    text = build_report(tmp / "results", tmp / "report2.md", shares="points")
    assert "| regime | share of computed points | points |" in text
    res = CliRunner().invoke(app, ["report", str(tmp / "results"), "-o", str(tmp / "r3.md"),
                                   "--shares", "points"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "share of computed points" in (tmp / "r3.md").read_text()
    res = CliRunner().invoke(app, ["report", str(tmp / "results"), "-o", str(tmp / "r4.md"),
                                   "--shares", "cells"])  # fmt: skip
    assert res.exit_code == 2 and "area, points" in res.output


# ------------------------------------------------------- 20: starters, demo configs


def _models():
    from pipeline.models import names

    return names()


@pytest.mark.parametrize("name", ["standard", "modes", "coordination", "asymmetric", "dynamic"])
def test_starters_say_what_they_sweep_and_leave_optional_parameters_out(name):
    """A starter says in comments what it sweeps and what it fixes, and gives only what
    the model needs: an optional parameter given a value would sweep another case than
    the papers' without a word (``L_S = 1``, ``alpha = 0.5`` made South scale-limited
    wherever ``theta > 1.5``)."""
    from pipeline import parse_config
    from pipeline.models import get
    from pipeline.starter import starter_config

    m = get(name)
    text = starter_config(m, name)
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any(ln.startswith("# Sweeps ") and "against" in ln for ln in head), head
    assert any(ln.startswith("# fixed: ") for ln in head), head
    spec = parse_config(text)
    J = m.sectors or 2
    given = [ln.split(":")[0].strip() for ln in text.splitlines() if ln.startswith("  ") and
             not ln.strip().startswith("#")]  # fmt: skip
    for n in given:  # every value given is needed
        assert m.requires(set(given) - {n}, J), f"{name}: {n} is optional, yet given"
    assert spec.model == name


def test_standard_starter_is_the_papers_case_with_claims_checked_everywhere(tmp_path):
    """``marshall new standard`` used to check the claims at 1,600 of 10,201 points
    (South scale-limited on the rest); now South's scale never binds (``theta_S =
    theta``, JDE section 2), so they are checked wherever the point is not knife-edge,
    and hold."""
    from pipeline import open_cube, parse_config, run
    from pipeline.models import get
    from pipeline.starter import starter_config

    text = starter_config(get("standard"), "standard").replace(", 100]}", ", 40]}")
    spec = parse_config(text, output=tmp_path / "s.zarr")
    run(spec)
    ds = open_cube(spec.output).load()
    claims = ds["claims"].values.reshape(-1, ds.sizes["claim"])
    knife = ds["knife_edge"].values.reshape(-1)
    assert (claims[~knife] != -1).all() and (claims != 0).all()
    assert knife.mean() < 0.01


def _coarse(text: str, n: int = 9) -> str:
    """A demo config on a coarse grid: at most ``n`` values per axis (the same ends),
    small designs, no refinement, short transitions."""
    import yaml

    raw = yaml.safe_load(text)
    for v in raw["params"].values():
        if isinstance(v, dict):
            for kind in ("linspace", "logspace"):
                if kind in v:
                    a, b, m = v[kind]
                    v[kind] = [a, b, min(m, n)]
            if "values" in v and len(v["values"]) > n:
                v["values"] = v["values"][:: -(-len(v["values"]) // n)]
    for k in ("refine", "chunks", "save_paths"):
        raw.pop(k, None)
    if "design" in raw:
        d = raw["design"]
        key = next(x for x in d if x not in ("seed", "second_order"))
        d[key] = min(d[key], 64)
    for k, v in (("T", 50.0), ("n_time", 11)):
        if k in raw["params"]:
            raw["params"][k] = v
    return yaml.safe_dump(raw)


def _demo_configs():
    from pathlib import Path

    return sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


#: the largest share of a demo config's (coarse) points that may be knife-edge: a map
#: whose boundary passes exactly through a few grid points flags those (about 1 / n
#: of an n x n grid per boundary at most); a config sitting on a knife edge flags a
#: whole line of them or all (configs/dynamic.yaml: every sector-2 path, 100%)
KNIFE_SHARE_MAX = 0.05


@pytest.mark.parametrize("path", _demo_configs(), ids=lambda p: p.stem)
def test_demo_configs_sit_off_knife_edges(path, tmp_path):
    """Each demo config on a coarse grid: the share of knife-edge points (and of
    knife-edge paths, status bit 64, per target) is at most KNIFE_SHARE_MAX. Points
    where every ``a_hat`` is 0 (``eps <= g``: the trap where every wage is 0, a region
    the dynamic demo shows on purpose) tie exactly, a region, not a knife edge of the
    parameters: left out."""
    from pipeline import open_cube, parse_config, run

    spec = parse_config(_coarse(path.read_text()), output=tmp_path / "c.zarr")
    run(spec)
    ds = open_cube(spec.output).load()
    keep = np.ones(ds["knife_edge"].shape, bool)
    if "a_hat" in ds:
        keep = ~(ds["a_hat"] == 0).all("sector").broadcast_like(ds["knife_edge"]).values
    share = float(ds["knife_edge"].values[keep].mean())
    assert share <= KNIFE_SHARE_MAX, f"{path.stem}: {share:.1%} of the points knife-edge"
    if "status" in ds:
        st = ds["status"].transpose(*ds["knife_edge"].dims, "target").values
        path_share = ((st & 64) > 0)[keep].mean(axis=0)
        assert (path_share <= KNIFE_SHARE_MAX).all(), f"{path.stem}: {path_share}"


# --------------------------------------------------------- 18: colours, colour bars


def test_ciede2000_matches_the_reference_pairs():
    """Reference pairs of Sharma, Wu & Dalal (2005), Table 1: to 1e-4, both orders."""
    from pipeline.colors import ciede2000

    pairs = [
        ((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
        ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
        ((50, 0, 0), (50, -1, 2), 2.3669),
        ((50, 2.49, -0.001), (50, -2.49, 0.0009), 7.1792),
        ((50, 2.5, 0), (73, 25, -18), 27.1492),
        ((50, 2.5, 0), (61, -5, 29), 22.8977),
        ((50, 2.5, 0), (56, -27, -3), 31.9030),
        ((50, 2.5, 0), (58, 24, 15), 19.4535),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
    ]
    for a, b, ref in pairs:
        assert ciede2000(a, b) == pytest.approx(ref, abs=1e-4)
        assert ciede2000(b, a) == pytest.approx(ref, abs=1e-4)


def _min_delta_e(colours):
    from itertools import combinations

    from pipeline.colors import delta_e

    return min(delta_e(a, b) for a, b in combinations(colours, 2))


def test_palette_reserve_greys_black_and_white_are_pairwise_distinguishable():
    from pipeline import colors as C

    every = C.PALETTE + C.RESERVE + [C.NONE_COLOR, C.MISSING_COLOR, "#000000", "#ffffff"]
    assert len(set(every)) == len(every)
    assert _min_delta_e(every) >= C.MIN_DELTA_E
    assert C.delta_e("#b142d7", "#8e42d7") < C.MIN_DELTA_E  # the pair this replaced


def _regimes_of_a_slice(tmp_path, J: int) -> list[str]:
    """The regimes of a phase diagram of ``coordination`` with J sectors: r_1 x theta_1,
    the other sectors in the WP's order (r_j falling, theta_j rising)."""
    from pipeline import open_cube, parse_config, run

    lines = [
        "model: coordination",
        f"sectors: {J}",
        "params:",
        "  r_1: {logspace: [0.25, 8.0, 41]}",
        "  theta_1: {linspace: [1.05, 6.0, 40]}",
    ]
    for j in range(2, J + 1):
        lines += [f"  r_{j}: {1.0 - 0.08 * (j - 2):g}", f"  theta_{j}: {1.5 + 0.4 * (j - 2):g}"]
    spec = parse_config("\n".join(lines + ["output: x.zarr"]) + "\n",
                        output=tmp_path / f"j{J}.zarr")  # fmt: skip
    run(spec)
    return list(open_cube(spec.output).marshall.regime_names().values())


def test_regime_colours_of_one_figure_are_distinguishable_for_every_J(tmp_path):
    """For J = 2..10 (config.MAX_SECTORS), the colours of a phase diagram's regimes
    (and the greys beside them) differ pairwise by at least MIN_DELTA_E (CIEDE2000).
    Before: J = 3's C1+C2+C3 and B2+C1+C2+C3 got #b142d7 and #8e42d7 (6.7 apart)."""
    from pipeline import colors as C
    from pipeline.config import MAX_SECTORS

    old = C.regime_colors(["C1+C2+C3", "B2+C1+C2+C3", "B1+C1+C2+C3"])
    assert _min_delta_e(list(old.values())) >= C.MIN_DELTA_E
    for J in range(2, MAX_SECTORS + 1):
        names = _regimes_of_a_slice(tmp_path, J)
        cols = C.regime_colors(names)
        assert len(names) > 1
        assert _min_delta_e(list(cols.values()) + [C.MISSING_COLOR]) >= C.MIN_DELTA_E, J
        assert C.regime_colors(reversed(names)) == cols  # the set decides, not the order


def test_any_set_of_regime_names_up_to_the_capacity_is_distinguishable():
    """Random sets of regime names (label sets of J = 2..10) of every size up to
    ``len(PALETTE) + len(RESERVE)``: pairwise >= MIN_DELTA_E; fixed names keep their
    fixed colour."""
    from pipeline import colors as C

    rng = np.random.default_rng(1)
    cap = len(C.PALETTE) + len(C.RESERVE)
    for size in (2, 5, 12, 32, 60, cap):
        J = int(rng.integers(3, 11))
        labs = [f"{x}{j}" for x in "BC" for j in range(1, J + 1)]
        names = set(rng.choice(list(C.FIXED), size=min(size // 3, 16), replace=False))
        while len(names) < size:
            k = int(rng.integers(1, len(labs) + 1))
            names.add("+".join(sorted(rng.choice(labs, size=k, replace=False))))
        cols = C.regime_colors(sorted(names))
        assert len(set(cols.values())) == len(names)
        assert _min_delta_e(list(cols.values())) >= C.MIN_DELTA_E, size
        assert all(cols[n] == C.FIXED[n] for n in names if n in C.FIXED)


def test_pv_gain_colour_scale_is_robust_to_a_few_extreme_points():
    from pipeline.figures import ROBUST_PERCENTILES, robust_limits

    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.normal(0.2, 0.1, 1000), [40.0, 55.0, -30.0], [np.nan] * 5])
    lo, hi, extend = robust_limits(vals)
    fin = vals[np.isfinite(vals)]
    assert (lo, hi) == tuple(np.percentile(fin, ROBUST_PERCENTILES))
    assert -0.1 < lo < hi < 0.5 and extend == "both"
    assert robust_limits(np.linspace(0, 1, 10)) == (0.0, 1.0, "neither")  # few: full range


def test_pv_gain_panel_has_robust_limits_extend_arrows_and_says_so(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline import figures, open_cube, parse_config, run

    text = (
        "model: dynamic\nsectors: 2\nparams:\n  r_1: {logspace: [0.5, 8.0, 12]}\n"
        "  r_2: 1.0\n  theta_1: {linspace: [1.05, 4.0, 10]}\n  theta_2: 3.0\n"
        "  g: 0.03\n  eps: 0.05\n  T: 50.0\n  n_time: 5\noutput: x.zarr\n"
    )
    spec = parse_config(text, output=tmp_path / "d.zarr")
    run(spec)
    ds = open_cube(spec.output)
    vals = np.asarray(ds["pv_gain"].sel(target=2).transpose("theta_1", "r_1").values, float)
    lo, hi, extend = figures.robust_limits(vals)
    assert extend != "neither"
    fig, ax = plt.subplots()
    figures.plot_welfare(ds, "r_1", "theta_1", ax=ax, kind="pv_gain:2")
    cbar = next(a for a in fig.axes if a is not ax)
    mesh = ax.collections[-1]
    assert (mesh.norm.vmin, mesh.norm.vmax) == pytest.approx((lo, hi))
    assert mesh.colorbar.extend == extend
    assert "percentiles" in cbar.get_ylabel()
    plt.close("all")


def test_boundary_line_styles_are_a_public_table():
    from pipeline import colors as C
    from pipeline import figures

    assert len(C.BOUNDARY_DASHES) == len(figures.BOUNDARY_STYLES) == 8
    assert figures.BOUNDARY_STYLES[0] == "-" and C.boundary_dash(0) == []
    assert C.boundary_dash(1, width=2.0) == [7, 3]
    assert figures.BOUNDARY_STYLES[9 % 8] == C.boundary_linestyle(9)
