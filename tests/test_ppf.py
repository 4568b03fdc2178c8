"""JDE Fig. 1 (``plot_ppf``): a corner is drawn and labelled as an equilibrium only where
it is one (docs/models.md#standard: with ``c = r_2/r_1``, ``B1`` iff ``c <= theta``,
``C2`` iff ``c theta_S/theta >= 1``); a corner that is not one is hollow, labelled so, has
no price line, and the title says which equilibria exist. Checked on the Axes (legend
labels, marker fill, annotations, title), against the closed forms and against a cube."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pipeline import figures  # noqa: E402

from .cubes import build_cube  # noqa: E402

#: a small South: theta = 1 + alpha Lbar = 2.5 with Lbar = 1, and L_S on both sides of it
SCALE = """
model: standard
params:
  r_1: 1.0
  r_2: [0.5, 0.8, 1.3, 2.0, 2.4, 3.0, 4.0]  # none on a boundary (c = 1, theta, theta/theta_S)
  theta: 2.5
  alpha: 1.5
  L_S: [0.25, 0.5, 0.8, 1.0, 2.0]
output: x.zarr
"""


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def corners(ax) -> dict[str, dict]:
    """Per corner label (``B1``, ``C2``): its legend text, whether its marker is filled,
    its annotation and whether a world price line goes through it."""
    labels = [ln.get_label() for ln in ax.lines]
    texts = [t.get_text() for t in ax.texts]
    out = {}
    for name in ("B1", "C2"):
        (marker,) = [ln for ln in ax.lines if ln.get_label().startswith(f"{name}:")]
        (note,) = [t for t in texts if t.startswith(f"${name[0]}_{name[1]}$")]
        out[name] = {
            "label": marker.get_label(),
            "filled": marker.get_markerfacecolor() != "none",
            "note": note,
            "price_line": f"world price line through {name}" in labels,
        }
    return out


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_c2_is_not_drawn_as_an_equilibrium_without_comparative_advantage():
    # c = 0.7 < 1 with L_S = Lbar: C2 does not exist, B1 is the only equilibrium
    ax = figures.plot_ppf(r_1=1.0, r_2=0.7, theta=2.5, L_S=1.0)
    # nothing presents C2 as an equilibrium: no price line through it, no bare label
    assert "world price line through C2" not in [ln.get_label() for ln in ax.lines]
    assert "$C_2$" not in [t.get_text() for t in ax.texts]
    cs = corners(ax)
    assert cs["C2"]["label"] == "C2: not an equilibrium (c < 1)"
    assert not cs["C2"]["filled"] and not cs["C2"]["price_line"]
    assert "not an equilibrium" in cs["C2"]["note"]
    assert cs["B1"] == {
        "label": "B1: equilibrium (stable)",
        "filled": True,
        "note": "$B_1$",
        "price_line": True,
    }
    assert "C2: not an equilibrium (c < 1)" in legend_texts(ax)
    assert "world price line through C2" not in legend_texts(ax)
    title = ax.get_title()
    assert "equilibria: B1 (stable); not an equilibrium: C2" in title
    assert "C2 (" not in title and "D (" not in title


def test_b1_is_not_drawn_as_an_equilibrium_beyond_theta():
    ax = figures.plot_ppf(r_1=1.0, r_2=3.0, theta=2.5, L_S=1.0)  # c = 3 > theta
    cs = corners(ax)
    assert cs["B1"]["label"] == "B1: not an equilibrium (c > θ)"
    assert not cs["B1"]["filled"] and not cs["B1"]["price_line"]
    assert cs["C2"]["filled"] and cs["C2"]["price_line"]
    assert "equilibria: C2 (stable); not an equilibrium: B1" in ax.get_title()


def test_both_corners_and_the_interior_equilibrium_under_condition_p():
    ax = figures.plot_ppf(r_1=1.0, r_2=1.5, theta=2.5, L_S=1.0)  # 1 < c < theta
    cs = corners(ax)
    for name in ("B1", "C2"):
        assert cs[name]["label"] == f"{name}: equilibrium (stable)"
        assert cs[name]["filled"] and cs[name]["price_line"]
        assert cs[name]["note"] == f"${name[0]}_{name[1]}$"
    title = ax.get_title()
    assert "equilibria: B1 (stable), C2 (stable), D (interior, not stable)" in title
    assert "not an equilibrium" not in title


def test_a_small_south_needs_more_than_comparative_advantage():
    # c = 1.2 > 1 but theta_S = 1 + 1.5 * 0.5 = 1.75 < theta: c theta_S / theta = 0.84
    ax = figures.plot_ppf(r_1=1.0, r_2=1.2, theta=2.5, L_S=0.5, alpha=1.5)
    cs = corners(ax)
    assert cs["C2"]["label"] == "C2: not an equilibrium (c θ_S/θ < 1)"
    assert not cs["C2"]["filled"] and cs["B1"]["filled"]
    # the frontier ends at Q_2 = lam_2S theta_S L_S (the hollow marker sits on it)
    (c2,) = [ln for ln in ax.lines if ln.get_label().startswith("C2:")]
    np.testing.assert_allclose(c2.get_ydata(), [1.2 * 1.75 * 0.5])


@pytest.mark.parametrize("r_2", [1.0, 1.0 + 5e-13, 1.0 - 5e-13])
def test_knife_edge_corner_exists_but_is_not_stable(r_2):
    # c = 1 within the 1e-12 band: the weak existence condition of C2 holds, the strict
    # stability condition does not, and the point is flagged (the figure shows what the
    # model decides: it never classifies a point itself)
    ax = figures.plot_ppf(r_1=1.0, r_2=r_2, theta=2.5, L_S=1.0)
    cs = corners(ax)
    assert cs["C2"]["label"] == "C2: equilibrium (knife-edge, not stable)"
    assert cs["C2"]["filled"] and cs["C2"]["price_line"]
    assert "C2 (not stable)" in ax.get_title() and "knife-edge point" in ax.get_title()


def test_inconsistent_cluster_size_is_refused():
    with pytest.raises(ValueError, match=r"theta = 2.5 but 1 \+ alpha Lbar = 3"):
        figures.plot_ppf(r_1=1.0, r_2=1.5, theta=2.5, L_S=1.0, alpha=1.0, Lbar=2.0)
    with pytest.raises(ValueError, match="L_S must be a finite number > 0"):
        figures.plot_ppf(r_1=1.0, r_2=1.5, theta=2.5, L_S=float("inf"))


def test_corners_agree_with_the_cube_and_the_closed_forms(tmp_path_factory):
    """At every point of a cube whose South is sometimes too small for a full cluster
    (theta and alpha given, Lbar derived), the figure marks a corner as an equilibrium
    exactly where the cube says it exists, which is where the closed forms say."""
    ds, _ = build_cube(tmp_path_factory, SCALE, "ppf_scale")
    theta, Lbar = 2.5, 1.0
    seen = set()
    for r_2 in ds.r_2.values:
        for L_S in ds.L_S.values:
            pt = ds.sel(r_2=r_2, L_S=L_S)
            ax = figures.plot_ppf(ds=ds, at={"r_2": float(r_2), "L_S": float(L_S)})
            cs = corners(ax)
            theta_S = theta if L_S >= Lbar else 1.0 + 1.5 * L_S
            closed = {"B1": r_2 <= theta, "C2": r_2 * theta_S / theta >= 1.0}
            for name in ("B1", "C2"):
                cube = bool(pt.exists.sel(equilibrium=name))
                assert cs[name]["filled"] == cube == closed[name], (name, r_2, L_S)
                assert cs[name]["price_line"] == cube
                seen.add((name, cube))
            plt.close(ax.figure)
    assert seen == {("B1", True), ("B1", False), ("C2", True), ("C2", False)}
