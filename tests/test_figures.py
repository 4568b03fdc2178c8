"""Figures: non-empty images whose pixel colours map back to the cube's regimes and
labels, values drawn equal to the cube's, the paper's symbols and clear errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from pipeline import figures  # noqa: E402
from pipeline.models._spec import regime_name
from pipeline.models.standard import ppf  # noqa: E402

from .cubes import DYNAMIC, build_cube, coordination, standard  # noqa: E402

COORD = coordination(40, 30)
STANDARD = standard(40, 30)


def build(tmp_path_factory, text, name):
    return build_cube(tmp_path_factory, text, name)[0]


@pytest.fixture(scope="module")
def coord(tmp_path_factory):
    return build(tmp_path_factory, COORD, "coord")


@pytest.fixture(scope="module")
def std(tmp_path_factory):
    return build(tmp_path_factory, STANDARD, "std")


@pytest.fixture(scope="module")
def dyn(tmp_path_factory):
    pytest.importorskip("pipeline.models.dynamic")
    return build(tmp_path_factory, DYNAMIC, "dyn")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def pixels(ax):
    """Render the axes' figure; return a function (x, y) in data coords -> '#rrggbb'."""
    fig = ax.figure
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())
    h = img.shape[0]

    def at(x, y):
        px, py = ax.transData.transform((x, y))
        r, g, b, _ = img[int(round(h - py)), int(round(px))]
        return to_hex((r / 255, g / 255, b / 255))

    return at


def interior(names: np.ndarray) -> np.ndarray:
    """Cells whose 8 neighbours share their value (away from any boundary line)."""
    ok = np.zeros(names.shape, bool)
    ok[1:-1, 1:-1] = True
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            ok[1:-1, 1:-1] &= (
                names[1 + di : names.shape[0] - 1 + di, 1 + dj : names.shape[1] - 1 + dj]
                == names[1:-1, 1:-1]
            )
    return ok


def regime_names_of(sl):
    labels = list(sl["regime"].attrs["regime_bits"])
    return np.vectorize(lambda c: regime_name(int(c), labels))(sl["regime"].values)


# ------------------------------------------------------------------------- phase


@pytest.mark.parametrize("with_boundaries", [False, True])
def test_phase_pixels_map_back_to_regimes(coord, with_boundaries):
    ax = figures.plot_phase(
        coord, "r_1", "theta_1", at={"theta_2": 2.0}, boundaries=with_boundaries
    )
    colors = figures.regime_colors(coord)
    assert len(set(colors.values())) == len(colors)  # one colour per regime
    back = {v: k for k, v in colors.items()}
    sl = coord.sel(theta_2=2.0).transpose("r_1", "theta_1", ...)
    names = regime_names_of(sl)
    check = interior(names) if with_boundaries else np.ones(names.shape, bool)
    px = pixels(ax)
    n = 0
    for i, r1 in enumerate(sl.r_1.values):
        for j, t1 in enumerate(sl.theta_1.values):
            if check[i, j]:
                assert back.get(px(r1, t1)) == names[i, j], (r1, t1)
                n += 1
    assert n > 0.5 * names.size
    assert len(set(names.ravel())) >= 4  # the slice shows several regimes


def test_phase_axes_legend_and_boundaries(coord):
    ax = figures.plot_phase(coord, "r_1", "theta_1", at={"theta_2": 1.5})
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "$r_{1}$" and ax.get_ylabel() == r"$\theta_{1}$"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    present = set(regime_names_of(coord.sel(theta_2=1.5)).ravel())
    assert present <= set(texts)
    assert r"$r_{1}/r_{2} = \theta_{1}$" in texts  # condition (*) for C2
    gids = {ln.get_gid() for ln in ax.lines}
    assert "boundary:C2: r_1/r_2 = theta_1" in gids
    line = next(ln for ln in ax.lines if ln.get_gid() == "boundary:C2: r_1/r_2 = theta_1")
    x, y = line.get_data()
    np.testing.assert_allclose(x / y, 1.0, rtol=2e-3)  # r_1/r_2 = theta_1 with r_2 = 1
    assert r"\theta_{2}$ = 1.5" in ax.get_title()


def test_phase_standard_regimes(std):
    ax = figures.plot_phase(std, "r_2", "theta", boundaries=False)
    back = {v: k for k, v in figures.regime_colors(std).items()}
    names = regime_names_of(std.transpose("r_2", "theta", ...))
    assert set(names.ravel()) >= {"B1", "C2", "B1+C2"}
    px = pixels(ax)
    for i in range(0, std.sizes["r_2"], 3):
        for j in range(0, std.sizes["theta"], 3):
            assert back[px(std.r_2.values[i], std.theta.values[j])] == names[i, j]
    assert ax.get_ylabel() == r"$\theta$"


def test_colors_are_deterministic_and_colour_blind_safe(coord):
    from pipeline.colors import FIXED, label_color, regime_color

    a, b = figures.regime_colors(coord), figures.regime_colors(coord.copy())
    assert a == b
    # one colour per regime name, whatever the cube: the palette's, for the known names
    assert all(a[n] == regime_color(n) for n in a)
    assert all(a[n] in figures.PALETTE for n in a if n in FIXED)
    assert len(set(a.values())) == len(a)
    labs = figures.label_colors(coord)
    assert labs == {lab: label_color(lab) for lab in ["C1", "C2", "B1", "B2"]}
    assert len(set(labs.values())) == 4 and set(labs.values()) <= set(figures.PALETTE)


def test_plot_errors(coord):
    with pytest.raises(ValueError, match=r"unknown dimension 'theta'.*r_1, theta_1, theta_2"):
        figures.plot_phase(coord, "r_1", "theta")
    with pytest.raises(ValueError, match=r"not 2-D: .*theta_2 \(2 values.*at\(theta_2=1.5\)"):
        figures.plot_phase(coord, "r_1", "theta_1")
    with pytest.raises(ValueError, match="'r_2' is fixed at 1"):
        figures.plot_welfare(coord, "r_1", "r_2", at={"theta_2": 2})
    with pytest.raises(ValueError, match="both 'r_1'"):
        figures.plot_income_gap(coord, "B1", "r_1", "r_1", at={"theta_2": 2})
    with pytest.raises(ValueError, match="unknown equilibrium 'D'"):
        figures.plot_income_gap(coord, "D", "r_1", "theta_1", at={"theta_2": 2})
    with pytest.raises(ValueError, match="no transition paths"):
        figures.plot_paths(coord)
    with pytest.raises(ValueError, match="model 'standard'"):
        figures.plot_ppf(ds=coord)


# ------------------------------------------------------------------ welfare, gap


def _mesh_values(ax):
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][-1]
    return np.ma.filled(mesh.get_array().astype(float), np.nan)


def test_welfare_best_and_ratio(coord):
    fig = figures.plot_welfare(coord, "r_1", "theta_1", at={"theta_2": 2.0})
    ax_best, ax_ratio = [a for a in fig.axes if a.get_title().startswith(("best eq", "best /"))]
    sl = coord.sel(theta_2=2.0).transpose("theta_1", "r_1", ...)
    w = sl["wage"]
    np.testing.assert_array_equal(
        _mesh_values(ax_ratio).reshape(w.shape[:2]),
        (w.max("equilibrium") / w.min("equilibrium")).values,
    )
    back = {v: k for k, v in figures.label_colors(coord).items()}
    labels = list(coord.equilibrium.values)
    px = pixels(ax_best)
    for j in range(0, sl.sizes["r_1"], 3):
        for i in range(0, sl.sizes["theta_1"], 3):
            assert (
                back[px(sl.r_1.values[j], sl.theta_1.values[i])]
                == labels[int(sl.best.values[i, j])]
            )


def test_income_gap_is_one_over_wage(coord):
    ax = figures.plot_income_gap(coord, "B1", "r_1", "theta_1", at={"theta_2": 2.0})
    sl = coord.sel(theta_2=2.0, equilibrium="B1").transpose("theta_1", "r_1", ...)
    got = _mesh_values(ax).reshape(sl["wage"].shape)
    np.testing.assert_array_equal(got, 1.0 / sl["wage"].values)
    assert np.isnan(got[~sl["exists"].values]).all()
    assert "B1 does not exist" in [t.get_text() for t in ax.get_legend().get_texts()]


# -------------------------------------------------------------------------- PPF


def test_ppf_lines_from_model_helper(std):
    ax = figures.plot_ppf(r_1=1.0, r_2=1.5, theta=2.5, L_S=1.0)
    ref = ppf(1.0, 1.5, 2.5, 1.0)
    lines = {ln.get_label(): ln for ln in ax.lines}
    x, y = lines["PPF with the cluster externality"].get_data()
    np.testing.assert_array_equal(x, ref["Q_1"])
    np.testing.assert_array_equal(y, ref["Q_2"])
    np.testing.assert_array_equal(
        lines["PPF without externality"].get_data()[1], ref["Q_2_no_externality"]
    )
    for name in ("B1", "C2"):
        x, y = lines[f"world price line through {name}"].get_data()
        np.testing.assert_allclose(np.diff(y) / np.diff(x), -2.5)  # -p_1/p_2 = -theta
    # C2's price line lies above B1's iff c = r_2/r_1 > 1 (Mill test iff CA)
    assert (
        lines["world price line through C2"].get_data()[1][0]
        > lines["world price line through B1"].get_data()[1][0]
    )
    ax2 = figures.plot_ppf(ds=std, at={"r_2": 2.0, "theta": 3.0})
    p = figures.ppf_params(std, {"r_2": 2.0, "theta": 3.0})
    assert p["r_1"] == 1.0 and p["theta"] == pytest.approx(
        float(std.theta.sel(theta=3.0, method="nearest"))
    )
    assert ax2.lines


# ------------------------------------------------------------------------ saving


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_save_formats(coord, tmp_path, suffix, magic):
    out = tmp_path / f"phase{suffix}"
    figures.save(figures.plot_phase(coord, "r_1", "theta_1", at={"theta_2": 2}), out)
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 2000


# ----------------------------------------------------------------------- dynamic


def test_dynamic_paths_and_welfare(dyn):
    fig = figures.plot_paths(dyn, at={"r_1": 2.0, "theta_1": 2.0})
    ax_x, ax_w = fig.axes[:2]
    pt = dyn.sel(r_1=2.0, theta_1=2.0, method="nearest")
    for k in (1, 2):
        line = next(ln for ln in ax_x.lines if ln.get_label().startswith(rf"$x_{{{k}}}(t)$"))
        np.testing.assert_array_equal(line.get_ydata(), pt.x_path.sel(target=k).values)
        line = next(ln for ln in ax_w.lines if f"cluster in {k}" in ln.get_label())
        np.testing.assert_array_equal(line.get_ydata(), pt.wage_path.sel(target=k).values)
    fig = figures.plot_welfare(dyn, "r_1", "theta_1")
    titles = [a.get_title() for a in fig.axes]
    assert "coordinate in sector 2: present-value gain" in titles
    ax_pv = next(a for a in fig.axes if a.get_title().startswith("coordinate in sector 1"))
    np.testing.assert_array_equal(
        _mesh_values(ax_pv).reshape(4, 6),
        dyn.pv_gain.sel(target=1).transpose("theta_1", "r_1").values,
    )
    ax = figures.plot_phase(dyn, "r_1", "theta_1")
    assert any(ln.get_gid() == "boundary:C2: r_1/r_2 = theta_1/a_hat_1" for ln in ax.lines)


def test_dynamic_maps_label_the_a_hat_zero_trap(tmp_path_factory):
    """Over g x eps the region eps <= g (a_hat = 0: B1's wage 0, the worst trap) is a
    knife-edge tie, hatched and labelled; the line eps = g is drawn; the welfare and
    income-gap maps leave no computed cell blank (infinite and undefined values have
    their own labelled colours)."""
    text = (
        DYNAMIC.replace("g: 0.02", "g: {linspace: [0.01, 0.1, 7]}")
        .replace("eps: 0.05", "eps: {linspace: [0.02, 0.2, 8]}")
        .replace("r_1: {logspace: [0.5, 4.0, 6]}", "r_1: 1.5")
        .replace("theta_1: {linspace: [1.2, 3.0, 4]}", "theta_1: 1.5")
    )
    ds, _ = build_cube(tmp_path_factory, text, "dyn_g_eps")
    ax = figures.plot_phase(ds, "g", "eps")
    assert any(ln.get_gid() == "boundary:a_hat_1 = 0: eps_1 = g_1" for ln in ax.lines)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("knife-edge" in t for t in labels)
    fig = figures.plot_welfare(ds, "g", "eps")
    texts = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert "infinite (a wage of 0)" in texts
    assert any(t.startswith("not defined") for t in texts)
    plt.close("all")
