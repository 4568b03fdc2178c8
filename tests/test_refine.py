"""Regime-adaptive refinement core (pipeline.refine) against dense evaluation.

Synthetic categorical functions stand in for the economics: half-planes, the wedge
``r_1 / r_2 = theta_1`` on log/linear axes, circles and spheres, several regions meeting,
the ``standard`` model's B1/C2 rule with its knife-edges. They use only correctly
rounded arithmetic (no transcendental functions), so a value computed in any batch is
bit for bit the value of the dense evaluation.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pipeline import refine as rf

# ------------------------------------------------------------------ synthetic models


def _out(regime, knife=None, w=None):
    regime = np.asarray(regime).astype(np.int32)
    return {
        "regime": regime,
        "best": (regime % 2).astype(np.int8) - 1,  # a second categorical, with -1 a value
        "knife_edge": np.zeros(regime.shape, bool) if knife is None else knife,
        "w": np.zeros(regime.shape) if w is None else w,
    }


def halfplanes(p):
    """Two straight boundaries (1-D to 6-D): ``x_1 + 0.7 x_2 > 0.9`` and ``x_1 < 0.35``."""
    xs = list(p.values())
    s = xs[0] + 0.7 * (xs[1] if len(xs) > 1 else 0.0) + 0.1 * sum(xs[2:])
    return _out((s > 0.9).astype(int) + 2 * (xs[0] < 0.35), w=s * xs[0])


def wedge(p):
    """``r_1 / r_2 < theta_1`` (the modes model's condition (*)) and ``r_1 > 2 theta_1 / 3``."""
    r1, r2, th = p["r_1"], p["r_2"], p["theta_1"]
    q = r1 / r2
    return _out((q < th).astype(int) + 2 * (3.0 * r1 > 2.0 * th), w=q * th)


def standard(p):
    """JDE section 2 with ``L_S >= Lbar``: ``c = r_2 / r_1``, B1 iff ``c <= theta``, C2 iff
    ``c >= 1``; regime bitmask (B1 = 1, C2 = 2), knife-edge where an equality holds."""
    r1, r2, th = p["r_1"], p["r_2"], p["theta"]
    c = r2 / r1
    b1, c2 = c <= th, c >= 1.0
    knife = (np.abs(c / th - 1.0) <= 1e-12) | (np.abs(c - 1.0) <= 1e-12)
    return _out(b1 * 1 + c2 * 2, knife=knife, w=np.where(c2, r2, r1))


def circles(p):
    """Inside a circle / sphere of radius 0.3 around 0.5 (the first three axes), and,
    apart from it, a disk of radius 0.2 around (0.1, 0.9), holding the corner (0, 1):
    two curved boundaries."""
    xs = list(p.values())[:3]
    d2 = sum((x - 0.5) * (x - 0.5) for x in xs)
    e2 = (xs[0] - 0.1) * (xs[0] - 0.1) + (xs[1] - 0.9) * (xs[1] - 0.9)
    return _out((d2 < 0.09).astype(int) + 2 * (e2 < 0.04), w=d2)


def sectors(p):
    """Three 120-degree sectors meeting at (0.45, 0.55) (the nearest of three directions,
    by dot products) plus a disk across two of their boundaries: several regions and
    triple points."""
    x, y = p["x"] - 0.45, p["y"] - 0.55
    h = 0.8660254037844386
    dots = np.stack([x, -0.5 * x + h * y, -0.5 * x - h * y])
    code = np.argmax(dots, axis=0)
    disk = (p["x"] - 0.7) ** 2 + (p["y"] - 0.3) ** 2 < 0.03
    return _out(code + 3 * disk, w=x * y)


def strip(p):
    """A strip 0.30 < x < 0.32, y < 0.6, thinner than a coarse spacing of 1/8, and a
    half-plane y > 0.8 that does not meet it."""
    x, y = p["x"], p["y"]
    return _out(((x > 0.30) & (x < 0.32) & (y < 0.6)).astype(int) + 2 * (y > 0.8))


def _lin(name, a, b, n):
    return rf.RefineAxis(name, "linspace", a, b, n)


def _log(name, a, b, n):
    return rf.RefineAxis(name, "logspace", a, b, n)


def _dense(grid, f):
    mesh = np.meshgrid(*(grid.finest_coords[n] for n in grid.names), indexing="ij")
    res = f({n: m.ravel() for n, m in zip(grid.names, mesh)})
    return {k: np.asarray(v).reshape(grid.finest_shape + np.shape(v)[1:]) for k, v in res.items()}


def _check_exact(grid, f, on=("regime", "best"), neighbours="face", chunks=None):
    """Refine, view, and compare with the dense evaluation; returns (levels, view, dense)."""
    levs = rf.run_in_memory(grid, f, on, neighbours=neighbours, chunks=chunks)
    view = rf.dense_view(grid, levs)
    dense = _dense(grid, f)
    ok = ~dense["knife_edge"]
    for v in on:
        bad = np.argwhere((view[v] != dense[v]) & ok)
        assert not len(bad), f"{v}: {len(bad)} finest points differ, e.g. {bad[:3].tolist()}"
    # every value stored at every level is the dense value at its finest point, bit for bit
    for l, lev in enumerate(levs):
        pts = np.argwhere(lev["computed"])
        fin = tuple((pts * np.array(grid.stride(l))).T)
        for name in ("regime", "best", "knife_edge", "w"):
            np.testing.assert_array_equal(lev[name][tuple(pts.T)], dense[name][fin])
    top = view["level"] == grid.levels
    np.testing.assert_array_equal(view["w"][top], dense["w"][top])
    assert view["level"].min() >= 0
    return levs, view, dense


def _brute_step(grid, l, codes, knife, computed, neighbours):
    """The marking rule of the module docstring, cell by cell."""
    d, R = grid.ndim, grid.refined
    cshape = tuple(n - 1 if r else n for n, r in zip(grid.shape(l), R))
    offs = [o for o in itertools.product((0, 1), repeat=d) if all(r or not x for x, r in zip(o, R))]
    cand = np.zeros(cshape, bool)
    marked = np.zeros(cshape, bool)
    for c in np.ndindex(cshape):
        corners = [tuple(ci + oi for ci, oi in zip(c, o)) for o in offs]
        cand[c] = all(computed[p] for p in corners)
        differ = any(
            len({tuple(np.atleast_1d(v[p]).tolist()) for p in corners}) > 1 for v in codes.values()
        )
        marked[c] = cand[c] and (differ or any(knife[p] for p in corners))
    if neighbours == "face":
        nb = [tuple(0 for _ in range(d))]
        for k in range(d):
            if R[k]:
                for s in (-1, 1):
                    e = [0] * d
                    e[k] = s
                    nb.append(tuple(e))
    else:
        nb = [
            e
            for e in itertools.product((-1, 0, 1), repeat=d)
            if all(r or not x for x, r in zip(e, R))
        ]
    active = np.zeros(cshape, bool)
    for c in np.ndindex(cshape):
        if not cand[c]:
            continue
        for e in nb:
            n = tuple(ci + ei for ci, ei in zip(c, e))
            if all(0 <= x < m for x, m in zip(n, cshape)) and marked[n]:
                active[c] = True
                break
    nshape = grid.shape(l + 1)
    pts = np.zeros(nshape, bool)
    for c in zip(*np.nonzero(active)):
        rng = [range(2 * ci, 2 * ci + 3) if r else [ci] for ci, r in zip(c, R)]
        for j in itertools.product(*rng):
            pts[j] = True
    return marked, active, pts


# ------------------------------------------------------------------------ the grids


def test_levels_take_coordinates_from_the_finest_grid():
    axes = [
        _lin("x", 0.1, 0.7, 7),
        _log("r", 0.25, 4.0, 5),
        rf.RefineAxis.from_config("J", [2, 3, 5]),
    ]
    g = rf.RefineGrid(axes, 3)
    assert g.finest_shape == (49, 33, 3) and g.refined == (True, True, False)
    np.testing.assert_array_equal(g.finest_coords["x"], np.linspace(0.1, 0.7, 49))
    np.testing.assert_array_equal(g.finest_coords["r"], np.geomspace(0.25, 4.0, 33))
    np.testing.assert_array_equal(g.finest_coords["J"], [2.0, 3.0, 5.0])
    for l in range(4):
        assert g.shape(l) == (6 * 2**l + 1, 4 * 2**l + 1, 3)
        for n, s, im in zip(g.names, g.stride(l), g.index_map(l)):
            np.testing.assert_array_equal(g.coords(l)[n], g.finest_coords[n][im])
            np.testing.assert_array_equal(im, np.arange(len(im)) * s)
        if l < 3:  # level l is level l + 1's even sub-lattice
            for n, sl in zip(g.names, g.embed(l)):
                np.testing.assert_array_equal(g.coords(l + 1)[n][sl], g.coords(l)[n])
    # log axes refine in log coordinates: a level is geometric
    r1 = g.coords(1)["r"]
    np.testing.assert_allclose(r1[1:] / r1[:-1], (4.0 / 0.25) ** (1 / 8), rtol=1e-13)
    # the dense equivalent is the same arrays, from the same numpy calls
    dense = g.dense_axes()
    assert dense == {
        "x": {"linspace": [0.1, 0.7, 49]},
        "r": {"logspace": [0.25, 4.0, 33]},
        "J": {"values": [2.0, 3.0, 5.0]},
    }
    g2 = rf.RefineGrid([rf.RefineAxis.from_config(n, v) for n, v in dense.items()], 0)
    for n in g.names:
        np.testing.assert_array_equal(g2.finest_coords[n], g.finest_coords[n])
    p = g.params(1, np.array([[3, 2, 1], [0, 8, 2]]))
    assert p["x"].tolist() == [g.finest_coords["x"][12], g.finest_coords["x"][0]]
    assert p["r"].tolist() == [g.finest_coords["r"][8], g.finest_coords["r"][32]]
    assert p["J"].tolist() == [3.0, 5.0]


def test_nearest_level_point_ties_go_to_the_lower_index():
    g = rf.RefineGrid([_lin("x", 0, 1, 3), _log("y", 1, 2, 2)], 2)  # strides 4 at level 0
    i = np.arange(9)
    (q,) = g.nearest(0, [i])[:1]
    assert q.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert g.nearest(1, [i])[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert g.nearest(2, [i])[0].tolist() == i.tolist()
    # brute force: nearest in index space, ties to the lower
    for s, l in ((4, 0), (2, 1)):
        brute = [min(range(0, 9, s), key=lambda j: (abs(j - k), j)) // s for k in i]
        assert g.nearest(l, [i])[0].tolist() == brute
    regs = g.level_regions((slice(3, 6), 4))
    assert regs[0] == (slice(1, 2), slice(1, 2))
    assert regs[2] == (slice(3, 6), slice(4, 5))


@pytest.mark.parametrize(
    "make, levels, match",
    [
        (lambda: [rf.RefineAxis.from_config("J", [2, 3])], 2, "no axis can be refined"),
        (lambda: [_lin("x", 0, 1, 3)], -1, "refine.levels"),
        (lambda: [_lin("x", 0, 1, 3)], 21, "refine.levels"),
        (lambda: [_lin("x", 0, 1, 3)], "8", "refine.levels"),
        (lambda: [_lin("x", 0, 1, 3), _lin("x", 0, 1, 3)], 1, "distinct"),
        (lambda: [rf.RefineAxis.from_config("r", {"logspace": [0, 1, 3]})], 1, "params.r"),
        (lambda: [rf.RefineAxis.from_config("r", {"linspace": [1, 0, 3]})], 1, "params.r"),
        (lambda: [rf.RefineAxis.from_config("r", {"linspace": [0, 1]})], 1, "params.r"),
        (lambda: [rf.RefineAxis.from_config("r", {"geomspace": [1, 2, 3]})], 1, "params.r"),
        (lambda: [rf.RefineAxis.from_config("r", [3, 2])], 1, "params.r"),
    ],
)
def test_bad_grids_are_refused_naming_the_field(make, levels, match):
    with pytest.raises(ValueError, match=match):
        rf.RefineGrid(make(), levels)


def test_bad_step_inputs_are_refused():
    g = rf.RefineGrid([_lin("x", 0, 1, 5), _lin("y", 0, 1, 4)], 2)
    codes = np.zeros((5, 4), np.int32)
    with pytest.raises(ValueError, match="refine.on"):
        g.step(0, {})
    with pytest.raises(ValueError, match="shape"):
        g.step(0, {"regime": np.zeros((4, 4), int)})
    with pytest.raises(ValueError, match="integer codes"):
        g.step(0, {"regime": codes.astype(float)})
    with pytest.raises(ValueError, match="computed mask"):
        g.step(1, {"regime": np.zeros(g.shape(1), int)})
    with pytest.raises(ValueError, match="finest level"):
        g.step(2, {"regime": np.zeros(g.shape(2), int)}, computed=np.ones(g.shape(2), bool))
    with pytest.raises(ValueError, match="neighbours"):
        g.step(0, {"regime": codes}, neighbours="diagonal")
    with pytest.raises(ValueError, match="chunks"):
        g.step(0, {"regime": codes}).blocks((4,))
    with pytest.raises(ValueError, match="levels"):
        rf.dense_view(g, [{}])


# ------------------------------------------------------------------------ the steps


@pytest.mark.parametrize("neighbours", ["face", "box"])
@pytest.mark.parametrize(
    "axes",
    [
        [_lin("x", 0, 1, 7), _lin("y", 0, 1, 6)],
        [_lin("x", 0, 1, 4), rf.RefineAxis.from_config("J", [2, 3, 4]), _log("r", 1, 2, 5)],
        [_lin("x", 0, 1, 9)],
    ],
    ids=["2d", "3d-list", "1d"],
)
def test_step_follows_the_marking_rule(axes, neighbours):
    g = rf.RefineGrid(axes, 2)
    rng = np.random.default_rng(7)
    shape = g.shape(0)
    codes = {
        "regime": rng.choice([0, 1], size=shape, p=[0.85, 0.15]).astype(np.int32),
        "exists": rng.random(shape + (2,)) < 0.04,  # a trailing dim, compared element-wise
    }
    knife = rng.random(shape) < 0.03
    computed = rng.random(shape) < 0.9
    st = g.step(0, codes, knife=knife, computed=computed, neighbours=neighbours)
    marked, active, pts = _brute_step(g, 0, codes, knife, computed, neighbours)
    np.testing.assert_array_equal(st.marked, marked)
    np.testing.assert_array_equal(st.active, active)
    np.testing.assert_array_equal(st.points(), pts)
    even = np.zeros(g.shape(1), bool)
    even[g.embed(0)] = True
    np.testing.assert_array_equal(st.compute_mask(), pts & ~even)
    np.testing.assert_array_equal(st.copy_mask(), pts[g.embed(0)])
    assert st.n_compute == (pts & ~even).sum() and st.n_points == pts.sum()
    # any box of the next level is the corresponding part of the whole
    box = tuple(slice(n // 3, n - n // 4) for n in g.shape(1))
    np.testing.assert_array_equal(st.points(box), pts[box])


def test_blocks_partition_the_points_in_a_fixed_order():
    g = rf.RefineGrid([_lin("x", 0, 1, 9), _log("r", 1, 4, 7), _lin("t", 0, 1, 5)], 3)
    levs = rf.run_in_memory(
        g,
        lambda p: circles({"a": p["x"], "b": np.log2(p["r"]) / 2, "c": p["t"]}),
        ["regime"],
        until=1,
    )
    lev = levs[1]
    st = g.step(1, {"regime": lev["regime"]}, knife=lev["knife_edge"], computed=lev["computed"])
    comp, pts = st.compute_mask(), st.points()
    assert 0 < comp.sum() < comp.size
    for chunks in [(7, 5, 3), (33, 25, 17), (4, 4, 4)]:
        blocks = st.blocks(chunks)
        seen_c = np.zeros_like(comp, dtype=int)
        seen_p = np.zeros_like(comp, dtype=int)
        nchunks = tuple(math.ceil(n / c) for n, c in zip(g.shape(2), chunks))
        assert [b.id for b in blocks] == sorted(b.id for b in blocks)
        for b in blocks:
            assert b.id == np.ravel_multi_index(b.index, nchunks)
            assert b.n_compute + len(b.copy_to) > 0
            for arr in (b.compute, b.copy_to):
                assert all(
                    (s.start <= arr[:, k]).all() and (arr[:, k] < s.stop).all()
                    for k, s in enumerate(b.region)
                )
                flat = np.ravel_multi_index(tuple(arr.T), g.shape(2))
                assert (np.diff(flat) > 0).all()  # C order
            np.add.at(seen_c, tuple(b.compute.T), 1)
            np.add.at(seen_p, tuple(b.copy_to.T), 1)
            np.testing.assert_array_equal(b.copy_from * [2, 2, 2], b.copy_to)
        np.testing.assert_array_equal(seen_c, comp.astype(int))
        np.testing.assert_array_equal(seen_p, (pts & ~comp).astype(int))
    # a pure function of the stored level: recomputing gives the same blocks
    again = g.step(
        1,
        {"regime": lev["regime"].copy()},
        knife=lev["knife_edge"].copy(),
        computed=lev["computed"].copy(),
    )
    for b1, b2 in zip(st.blocks((7, 5, 3)), again.blocks((7, 5, 3)), strict=True):
        assert b1.id == b2.id and b1.region == b2.region
        np.testing.assert_array_equal(b1.compute, b2.compute)
        np.testing.assert_array_equal(b1.copy_from, b2.copy_from)


def test_batches_have_one_shape_and_fill_blocks_alike():
    pts = np.arange(14).reshape(7, 2)
    out = list(rf.batches(pts, 3))
    assert [n for _, n in out] == [3, 3, 1]
    assert all(b.shape == (3, 2) for b, _ in out)
    np.testing.assert_array_equal(out[-1][0], [[12, 13]] * 3)
    g = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 3)
    whole = rf.run_in_memory(g, halfplanes, ["regime"], chunks=(8, 8))
    calls = []

    def f(p):
        calls.append(len(p["x"]))
        return halfplanes(p)

    batched = rf.run_in_memory(g, f, ["regime"], chunks=(8, 8), batch=16)
    assert set(calls[1:]) == {16}  # after level 0, every kernel call has the batch shape
    for a, b in zip(whole, batched):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


# --------------------------------------------------------- refined == dense sweeps

CASES = {
    "1d-thresholds": (
        [_lin("x", 0.0, 1.0, 9)],
        5,
        lambda p: _out((p["x"] > 0.3).astype(int) + (p["x"] > 0.31) + (p["x"] > 0.77)),
    ),
    "2d-halfplanes": ([_lin("x1", 0, 1, 9), _lin("x2", 0, 1, 9)], 4, halfplanes),
    "2d-circles": ([_lin("x", 0, 1, 9), _lin("y", 0, 1, 7)], 4, circles),
    "2d-sectors": ([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 4, sectors),
    "2d-standard-log": (
        [
            _log("r_1", 0.25, 4, 9),
            _log("r_2", 0.25, 4, 9),
            rf.RefineAxis.from_config("theta", [1.5, 2.5]),
        ],
        4,
        standard,
    ),
    "3d-wedge-log-linear": (
        [_log("r_1", 0.25, 4, 5), _log("r_2", 0.5, 2, 5), _lin("theta_1", 1.05, 4, 5)],
        3,
        wedge,
    ),
    "3d-sphere-list": (
        [_lin("a", 0, 1, 5), _lin("b", 0, 1, 5), rf.RefineAxis.from_config("c", [0.3, 0.5, 0.55])],
        3,
        circles,
    ),
    "3d-sphere": ([_lin("a", 0, 1, 5), _lin("b", 0, 1, 5), _lin("c", 0, 1, 5)], 3, circles),
    "4d-planes": ([_lin(f"x{i}", 0, 1, 5) for i in range(4)], 2, halfplanes),
    "4d-sphere": ([_lin(f"x{i}", 0, 1, 4) for i in range(4)], 3, circles),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_refined_sweep_equals_the_dense_sweep(case):
    axes, levels, f = CASES[case]
    g = rf.RefineGrid(axes, levels)
    levs, view, dense = _check_exact(g, f)
    n = rf.points_computed(g, [lev["computed"] for lev in levs])
    assert n < 0.7 * g.n_dense
    assert (view["level"] == levels).any() and (view["level"] < levels).any()


def test_refined_sweep_equals_dense_with_box_neighbours_and_odd_chunks():
    g = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 4)
    _check_exact(g, sectors, neighbours="box", chunks=(13, 7))


def test_six_dimensional_smoke():
    g = rf.RefineGrid([_lin(f"x{i}", 0, 1, 3) for i in range(6)], 2)
    levs, view, dense = _check_exact(g, halfplanes, chunks=(5,) * 6)
    assert rf.points_computed(g, [lev["computed"] for lev in levs]) < g.n_dense


def test_a_boundary_bulging_through_a_face_is_followed():
    """A circle whose top pokes 1.1 finest spacings above the coarse line y = 1/2, between
    the corners x = 1/2 and 5/8: the cell above has all corners outside (not marked) and
    is refined only as the face neighbour of the marked cell below."""
    R, cx, top = 0.2, 0.5625, 0.5 + 1.1 / 128

    def bulge(p):
        dx, dy = p["x"] - cx, p["y"] - (top - R)
        return _out((dx * dx + dy * dy < R * R).astype(int))

    g = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 4)
    levs, view, dense = _check_exact(g, bulge, on=("regime",))
    assert levs[0]["regime"][4:6, 4:6].sum() == 0
    step = g.step(0, {"regime": levs[0]["regime"]})
    assert not step.marked[4, 4] and step.marked[4, 3] and step.active[4, 4]
    assert dense["regime"][64:81, 65].sum() == 5  # the finest points in the bulge


def test_knife_edge_points_are_resolved_to_the_finest_level():
    # the same geomspace on r_1 and r_2: c = r_2 / r_1 = 1 exactly on the diagonal
    g = rf.RefineGrid(
        [
            _log("r_1", 0.25, 4, 9),
            _log("r_2", 0.25, 4, 9),
            rf.RefineAxis.from_config("theta", [2.0]),
        ],
        3,
    )
    levs, view, dense = _check_exact(g, standard)
    knife = dense["knife_edge"]
    assert knife.sum() >= g.finest_shape[0]  # the whole diagonal (and theta's line)
    assert (view["level"][knife] == g.levels).all()
    np.testing.assert_array_equal(view["regime"], dense["regime"])


def test_a_region_thinner_than_the_coarse_spacing_is_missed_and_found_finer():
    """The one way refinement misses: a strip of width 0.02 between the coarse grid
    lines x = 0.25 and 0.375 touches no coarse corner (and no marked cell: the other
    boundary does not meet it), so level 0 never refines around it; with a coarse
    spacing of 1/64 < 0.02 a coarse grid line runs inside it and it is found."""
    coarse = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 4)  # finest 129 x 129
    levs = rf.run_in_memory(coarse, strip, ["regime"])
    view, dense = rf.dense_view(coarse, levs), _dense(coarse, strip)
    in_strip = dense["regime"] % 2 == 1
    assert in_strip.sum() == 2 * 77  # x = 39/128 and 40/128, y = k/128 < 0.6
    assert not (view["regime"] % 2 == 1).any()  # missed entirely
    assert (view["regime"] == dense["regime"])[~in_strip].all()  # the half-plane is exact
    fine = rf.RefineGrid([_lin("x", 0, 1, 65), _lin("y", 0, 1, 65)], 1)  # same finest grid
    assert fine.finest_shape == coarse.finest_shape
    np.testing.assert_array_equal(fine.finest_coords["x"], coarse.finest_coords["x"])
    _check_exact(fine, strip)


# ---------------------------------------------------------------------- counting


def test_points_computed_and_the_estimate(monkeypatch):
    g = rf.RefineGrid([_lin("x", 0, 1, 17), _lin("y", 0, 1, 17)], 6)  # 1025 x 1025
    levs = rf.run_in_memory(g, circles)
    steps = [
        g.step(l, {"regime": lev["regime"]}, knife=lev["knife_edge"], computed=lev["computed"])
        for l, lev in enumerate(levs[:-1])
    ]
    n = rf.points_computed(g, [lev["computed"] for lev in levs])
    assert n == math.prod(g.shape(0)) + sum(s.n_compute for s in steps)
    # the same counted piece by piece (small pieces: offsets along every axis)
    with monkeypatch.context() as m:
        m.setattr(rf, "_PIECE_POINTS", 5000)
        assert rf.points_computed(g, [lev["computed"] for lev in levs]) == n
        again = [
            g.step(l, {"regime": lev["regime"]}, computed=lev["computed"])
            for l, lev in enumerate(levs[:-1])
        ]
        assert [s.n_compute for s in again] == [s.n_compute for s in steps]
        assert [s.n_points for s in again] == [s.points().sum() for s in steps]
    est = rf.estimate(steps[0])
    assert est.dense == 1025**2 and est.per_level[1] == steps[0].n_compute
    assert 0.5 < est.points / n < 2.0, (est.points, n)
    # two circles (total length ~3.1 in domain units): ~2 w A / N ~ 2 % of the dense 1025^2
    assert n / g.n_dense < 0.03, n / g.n_dense
    g3 = rf.RefineGrid([_lin(c, 0, 1, 5) for c in "abc"], 4)  # 65^3
    levs3 = rf.run_in_memory(g3, circles)
    n3 = rf.points_computed(g3, [lev["computed"] for lev in levs3])
    est3 = rf.estimate(g3.step(0, {"regime": levs3[0]["regime"]}))
    assert 0.5 < est3.points / n3 < 2.5, (est3.points, n3)
    assert n3 / g3.n_dense < 0.25


# --------------------------------------------------------------------- the view


class _Recording:
    """An array that records the boxes read from it (as a chunked store would serve)."""

    def __init__(self, arr, log):
        self.arr, self.log = arr, log
        self.shape, self.dtype = arr.shape, arr.dtype

    def __getitem__(self, box):
        self.log.append(tuple((s.start, s.stop) for s in box))
        return self.arr[box]


def test_a_two_dimensional_slice_reads_only_what_it_needs():
    g = rf.RefineGrid([_lin(f"x{i}", 0, 1, 5) for i in range(4)], 2)  # 17^4
    levs = rf.run_in_memory(g, circles)
    log = []
    rec = [{k: _Recording(v, log) for k, v in lev.items()} for lev in levs]
    full = rf.dense_view(g, levs)
    sl = rf.dense_view(g, rec, region=(slice(None), 7, slice(2, 11), 8))
    for k in ("regime", "w", "level"):
        np.testing.assert_array_equal(sl[k], full[k][:, 7, 2:11, 8])
    assert sl["regime"].shape == (17, 9)
    for box in log:  # every read is a box of that slice at its level's spacing
        assert box[1][1] - box[1][0] == 1 and box[3][1] - box[3][0] == 1
        assert box[0][1] - box[0][0] <= 17 and box[2][1] - box[2][0] <= 9
    assert sum(math.prod(b - a for a, b in box) for box in log) <= 6 * 17 * 9 * (g.levels + 1)
    # by axis name, and a finest index array
    d = rf.dense_view(g, levs, region={"x1": 7, "x3": 8, "x2": [2, 5, 16]}, names=["regime"])
    np.testing.assert_array_equal(d["regime"], full["regime"][:, 7, [2, 5, 16], 8])


def test_the_lazy_dataset_is_the_view():
    xr = pytest.importorskip("xarray")
    g = rf.RefineGrid(
        [_lin("x", 0, 1, 9), _log("r", 1, 2, 5), rf.RefineAxis.from_config("J", [2, 3])], 3
    )

    def f(p):
        out = circles({"a": p["x"], "b": (p["r"] - 1) * p["J"] / 3, "c": 0.5})
        out["exists"] = np.stack([out["regime"] == 0, out["regime"] == 1], axis=-1)
        return out

    levs = rf.run_in_memory(g, f)
    full = rf.dense_view(g, levs)
    dsl = []
    for l, lev in enumerate(levs):
        dims = g.names
        data = {k: (dims + (("label",) if v.ndim > 3 else ()), v) for k, v in lev.items()}
        dsl.append(xr.Dataset(data, coords=g.coords(l)))
    ds = rf.dense_dataset(g, dsl, chunks=(16, 8, 1))
    assert ds.sizes == {"x": 65, "r": 33, "J": 2, "label": 2}
    np.testing.assert_array_equal(ds["r"].values, g.finest_coords["r"])
    for k in ("regime", "best", "w", "exists", "level"):
        np.testing.assert_array_equal(ds[k].values, full[k])
    part = ds["regime"].isel(x=slice(10, 20), J=1)
    assert part.data.npartitions == 2 * 5  # only the chunks of that slice
    np.testing.assert_array_equal(part.values, full["regime"][10:20, :, 1])
    # plain mappings of arrays serve as levels too
    ds2 = rf.dense_dataset(g, levs, names=["regime", "exists"], chunks=(64, 64, 2))
    assert ds2["exists"].dims == ("x", "r", "J", "exists_dim_0")
    np.testing.assert_array_equal(ds2["exists"].values, full["exists"])


def test_points_not_computed_at_any_level_read_level_minus_one():
    g = rf.RefineGrid([_lin("x", 0, 1, 5)], 2)
    levs = rf.run_in_memory(g, lambda p: _out(p["x"] > 0.6))
    levs[0]["computed"][0] = False  # as if level 0's first point were never written
    v = rf.dense_view(g, levs)
    # finest points 0, 1 and 2 (a tie, to the lower) have level-0 point 0 as nearest
    assert (v["level"][:3] == -1).all() and (v["level"][3:] >= 0).all()


# ------------------------------------------------------------------------- resume


def test_a_killed_level_resumes_block_by_block_to_the_same_cube():
    g = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 4)
    chunks = (8, 8)
    on = ("regime", "best")
    ref = rf.run_in_memory(g, sectors, on, chunks=chunks)
    # run to level 2, kill level 3 after half its blocks (the store holds what was written)
    levs = rf.run_in_memory(g, sectors, on, chunks=chunks, until=2)
    lev2 = levs[2]
    step = g.step(
        2,
        {"regime": lev2["regime"], "best": lev2["best"]},
        knife=lev2["knife_edge"],
        computed=lev2["computed"],
    )
    blocks = step.blocks(chunks)
    nxt = {k: np.zeros(g.shape(3) + v.shape[2:], v.dtype) for k, v in lev2.items()}
    done = set()
    for b in blocks[: len(blocks) // 2]:
        rf.fill_block(g, lev2, nxt, b, sectors)
        done.add(b.id)
    # restart: the step is recomputed from the stored level 2, blocks not done are rerun
    stored = {k: v.copy() for k, v in lev2.items()}
    step2 = g.step(
        2,
        {"regime": stored["regime"], "best": stored["best"]},
        knife=stored["knife_edge"],
        computed=stored["computed"],
    )
    assert [b.id for b in step2.blocks(chunks)] == [b.id for b in blocks]
    for b in step2.blocks(chunks):
        if b.id not in done:
            rf.fill_block(g, stored, nxt, b, sectors)
    step3 = g.step(
        3,
        {"regime": nxt["regime"], "best": nxt["best"]},
        knife=nxt["knife_edge"],
        computed=nxt["computed"],
    )
    last = {k: np.zeros(g.shape(4) + v.shape[2:], v.dtype) for k, v in nxt.items()}
    for b in step3.blocks(chunks):
        rf.fill_block(g, nxt, last, b, sectors)
    for got, want in zip([*levs[:3], nxt, last], ref, strict=True):
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])


# --------------------------------------------------------------------- boundaries


def _bisect(g, f, region, on="regime"):
    levs = rf.run_in_memory(g, f)
    codes = rf.dense_view(g, levs, region=region, names=[on])[on]
    return rf.bisect_boundaries(g, codes, region, lambda p: f(p)[on]), codes


def test_bisected_wedge_agrees_with_r1_over_r2_equals_theta():
    g = rf.RefineGrid(
        [_log("r_1", 0.25, 4, 9), _log("r_2", 0.5, 2, 5), _lin("theta_1", 1.05, 4, 5)], 3
    )
    region = (slice(None), slice(None), 17)  # a 2-D slice at theta_1 = finest[17]
    th = g.finest_coords["theta_1"][17]
    bnd, codes = _bisect(g, wedge, region)
    assert {(0, 1), (2, 3), (1, 3)} <= set(bnd)
    wed = [b for pair, b in bnd.items() if pair in ((0, 1), (2, 3))]
    n = 0
    for b in wed:
        r1, r2 = b.points["r_1"], b.points["r_2"]
        assert (b.points["theta_1"] == th).all()
        along1 = b.axis == 0
        np.testing.assert_allclose(r1[along1], th * r2[along1], rtol=1e-10, atol=0)
        np.testing.assert_allclose(r2[~along1], r1[~along1] / th, rtol=1e-10, atol=0)
        n += len(r1)
        # segment ends lie on the line too
        s = b.segments.reshape(-1, 2)
        np.testing.assert_allclose(s[:, 0], th * s[:, 1], rtol=1e-10)
    # one crossing per finest edge the line cuts: at least one per finest r_2 row it spans
    assert n >= 33
    for b in (bnd[p] for p in bnd if p in ((0, 2), (1, 3))):  # 3 r_1 = 2 theta_1
        np.testing.assert_allclose(b.points["r_1"], 2 * th / 3, rtol=1e-10, atol=0)


def test_bisected_circles_agree_with_the_radius_and_close_up():
    g = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 3)
    bnd, _ = _bisect(g, circles, None)
    b = bnd[(0, 1)]  # the big circle, inside the domain
    x, y = b.points["x"], b.points["y"]
    ax = b.axis == 0
    # along x at fixed y the root is 0.5 +- sqrt(0.09 - (y - 0.5)^2): compare coordinates
    root_x = 0.5 + np.sign(x[ax] - 0.5) * np.sqrt(0.09 - (y[ax] - 0.5) ** 2)
    root_y = 0.5 + np.sign(y[~ax] - 0.5) * np.sqrt(0.09 - (x[~ax] - 0.5) ** 2)
    np.testing.assert_allclose(x[ax], root_x, rtol=1e-10, atol=0)
    np.testing.assert_allclose(y[~ax], root_y, rtol=1e-10, atol=0)
    assert ax.sum() > 20 and (~ax).sum() > 20
    # a closed curve: every crossing ends exactly two segments
    s = b.segments.reshape(-1, 2)
    assert len(b.segments) == len(x)
    _, counts = np.unique(s, axis=0, return_counts=True)
    assert (counts == 2).all()
    np.testing.assert_allclose(np.hypot(s[:, 0] - 0.5, s[:, 1] - 0.5), 0.3, rtol=1e-10)


def test_bisected_boundaries_between_several_regions_carry_their_pair():
    g = rf.RefineGrid([_lin("x", 0, 1, 9), _lin("y", 0, 1, 9)], 3)
    bnd, codes = _bisect(g, sectors, None)
    assert len(bnd) >= 4
    for (a, b), B in bnd.items():
        assert a < b and len(B.axis) == len(B.edge)
        # just off each point, on either side along its edge, the two codes of the pair
        for side in (-1, 1):
            p = {n: B.points[n].copy() for n in g.names}
            for k, n in enumerate(g.names):
                sel = B.axis == k
                p[n][sel] += side * 1e-9
            got = set(sectors(p)["regime"].tolist())
            assert got <= {a, b}
        lo = {n: g.finest_coords[n][B.edge[:, k]] for k, n in enumerate(g.names)}
        assert np.isin(sectors(lo)["regime"], [a, b]).all()  # the edge starts on a side
    # a 1-D region (a row of the slice) bisects along its one axis only
    row = rf.bisect_boundaries(g, codes[:, 30], (slice(None), 30), lambda p: sectors(p)["regime"])
    for B in row.values():
        assert (B.axis == 0).all() and B.segments is None
        assert (B.points["y"] == g.finest_coords["y"][30]).all()
