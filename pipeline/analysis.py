r"""Global sensitivity analysis and scenario discovery on a sampled cube.

Pure functions of a sample table ``X`` (``pandas.DataFrame``, samples x parameters, in
the design's row order) and an output ``y`` (one value per sample); nothing here reads a
cube. The computations are SALib's (sensitivity) and the ``prim`` package's (PRIM).

Sensitivity (:func:`sensitivity`), for a model output :math:`Y = f(X_1, \dots, X_D)`:

``sobol``
    variance-based indices (Sobol' 2001; Saltelli et al. 2010 estimators,
    ``SALib.analyze.sobol``). First order :math:`S_i = V[E(Y|X_i)] / V(Y)`, the share of
    the variance explained by :math:`X_i` alone; total :math:`S_{Ti} = E[V(Y|X_{\sim i})]
    / V(Y)`, the share that would vanish if :math:`X_i` were known (interactions
    included). :math:`S_{Ti} = 0` iff :math:`Y` does not depend on :math:`X_i`. Needs a
    Saltelli design whose rows are all present and in the order generated.
``delta``
    Borgonovo's moment-independent :math:`\delta_i = \tfrac12 E_{X_i} \int |f_Y(y) -
    f_{Y|X_i}(y)| \, dy` (Plischke et al. 2013 given-data estimator,
    ``SALib.analyze.delta``), plus the given-data first-order Sobol' index :math:`S_1`.
    Works on any design and on a subset (``given``). ``delta`` is SALib's ``delta_raw``
    (bootstrap over the rows as sampled, so weighted by the design's distributions).
    Densities are Gaussian kernel estimates, meaningless for a two-valued output:
    a boolean ``y`` is refused (use ``pawn``, or ``sobol`` on a Saltelli design).
``pawn``
    Pianosi & Wagener (2015, 2018): the Kolmogorov-Smirnov distance between the
    unconditional CDF of :math:`Y` and its CDF with :math:`X_i` restricted to each of
    ``slides`` equal-probability slices; ``median`` (the usual index), ``minimum``,
    ``mean``, ``maximum``, ``CV``, ``stdev`` across slices (``SALib.analyze.pawn``). SALib
    gives no confidence interval for PAWN: ``median_conf`` is bootstrapped here, by
    calling ``pawn.analyze`` on ``num_resamples`` row resamples (with replacement). A
    non-influential input has a PAWN index of order :math:`\sqrt{S / N}`, not 0.

Every ``*_conf`` column is a half-width: :math:`z_{(1+c)/2}` times the bootstrap
standard deviation (SALib's convention), for ``conf_level`` :math:`c`.

Non-finite outputs (NaN where an equilibrium does not exist) are refused, never dropped
silently: the error says how many there are and suggests restricting the analysis with
``given`` (the rows where the output is defined, e.g. where the equilibrium exists) and
a given-data method. A regime restriction breaks the Saltelli structure, so ``sobol``
with ``given`` is refused too. Boolean outputs (``exists``) are analysed as 0/1.

Every index here assumes independent inputs; a design draws them so, but a subset
(``given``) need not keep them so. A box (``theta_1 > 2``) does; a regime does not:
``regime == 'B1+C1+C2'`` holds where ``r_1 / r_2 <= theta_1``, so in it ``r_1`` and
``r_2`` rise together, and an index credits each with what it shares with the other
(``w(C1) = r_1`` exactly, yet ``r_2`` gets ``delta`` 0.33 and ``S1`` 0.58 there, and the
``S1`` sum 1.63). :func:`input_dependence` measures Spearman's rank correlation between
every pair of inputs in the subset; a pair beyond what independent inputs give by
chance is named, with its correlation, in the result's ``attrs["warnings"]`` (printed
by ``marshall sensitivity``), the whole table in ``attrs["dependence"]``. The bound:
under independence Spearman's :math:`\rho` over :math:`n` samples has mean 0 and
variance :math:`1/(n-1)`, nearly normal, so a pair is flagged where :math:`|\rho| >
z_{1 - a/(2m)} / \sqrt{n - 1}`, :math:`m` the number of pairs and :math:`a = 0.01`
the chance that any pair of independent inputs is flagged (Bonferroni): 0.08 for 4
inputs and 1,557 samples, 0.25 for 4 inputs and 160.

Scenario discovery (:func:`discover`): PRIM (Friedman & Fisher 1999), a box
:math:`\{x : l_i \le x_i \le u_i\}` found by peeling ``peel_alpha`` of the points off
one face at a time while the density of cases of interest rises, then pasting back.
Along the peeling trajectory, for a box :math:`B` and the cases of interest
:math:`y = 1`: coverage :math:`= \#\{x \in B, y\} / \#\{y\}`, density :math:`=
\#\{x \in B, y\} / \#\{x \in B\}`, mass :math:`= \#\{x \in B\} / N`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

METHODS = ("sobol", "delta", "pawn")

Method = Literal["sobol", "delta", "pawn"]


class AnalysisError(ValueError):
    """An analysis that cannot be done on these data; the message says why and what to do."""


# --------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _salib_state(seed: int) -> Iterator[None]:
    """Run SALib with numpy's legacy global RNG seeded from ``seed`` and the process's
    warning settings untouched.

    SALib draws its bootstrap resamples from ``np.random`` (and ignores ``seed=0``);
    ``delta.analyze`` also resets the global warning filters and ``formatwarning``. All of
    that is saved and restored here, so a result depends on ``seed`` alone and the caller
    sees no side effect.
    """
    state = np.random.get_state()  # noqa: NPY002 - SALib's own RNG, saved and restored
    fmt = warnings.formatwarning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.random.seed(np.random.SeedSequence(seed).generate_state(4))  # noqa: NPY002
            yield
    finally:
        warnings.formatwarning = fmt
        np.random.set_state(state)  # noqa: NPY002


def _problem(names: Sequence[str], X: np.ndarray) -> dict[str, Any]:
    lo, hi = np.min(X, axis=0), np.max(X, axis=0)
    return {
        "num_vars": len(names),
        "names": list(names),
        "bounds": [[float(a), float(b)] for a, b in zip(lo, hi)],
    }


def _as_table(X: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    if not isinstance(X, pd.DataFrame):
        raise AnalysisError("X must be a pandas.DataFrame: one column per parameter")
    if X.shape[1] < 1 or X.shape[0] < 2:
        raise AnalysisError(f"X has shape {X.shape}; need at least 2 samples and 1 parameter")
    names = [str(c) for c in X.columns]
    if len(set(names)) != len(names):
        raise AnalysisError(f"X has repeated column names: {names}")
    try:
        Xv = X.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"X must hold numbers only: {exc}") from None
    bad = ~np.isfinite(Xv)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise AnalysisError(f"X has non-finite parameter values in {cols}")
    return names, Xv


def _as_output(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise AnalysisError(f"y must have one value per sample (shape ({n},)); got {y.shape}")
    if y.dtype == bool:
        return y.astype(np.float64)
    if not np.issubdtype(y.dtype, np.number):
        raise AnalysisError(f"y must be numbers or booleans; got dtype {y.dtype}")
    return y.astype(np.float64)


def _as_mask(given: Any, n: int) -> np.ndarray:
    g = np.asarray(given)
    if g.dtype != bool or g.shape != (n,):
        raise AnalysisError(
            f"given must be a boolean mask with one entry per sample (shape ({n},)); "
            f"got dtype {g.dtype}, shape {g.shape}"
        )
    return g


def _check_finite(y: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(y)
    if bad.any():
        raise AnalysisError(
            f"y is not finite (NaN where the equilibrium does not exist, or inf) at "
            f"{int(bad.sum())} of {y.size} samples{where}; analyse it where it is defined: "
            "given=<mask of those samples> (--given, e.g. the rows where the equilibrium "
            "exists) with method 'delta' or 'pawn', or analyse an output that is always "
            "defined (e.g. exists, as 0/1)"
        )


def _check_varies(y: np.ndarray, where: str) -> None:
    if np.ptp(y) == 0.0:
        raise AnalysisError(
            f"y takes one value ({y[0]:g}) on all {y.size} samples{where}: there is no "
            "variation to attribute to the parameters"
        )


def _z(conf_level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + conf_level / 2))


# ------------------------------------------------------------------ Saltelli rows


def saltelli_layout(X: np.ndarray) -> tuple[int, bool, list[int]]:
    """Check that the rows of ``X`` (n x D) are a Saltelli sample in SALib's order and
    return ``(N, second_order, columns)``: ``N`` base samples, whether the ``BA`` blocks
    are present, and ``columns[k]``, the column of ``X`` that block ``AB^k`` takes from
    ``B`` (the order the design was generated in).

    Layout per base sample ``i``: ``A_i``, ``AB_i^1 .. AB_i^D``, [``BA_i^1 .. BA_i^D``],
    ``B_i``, where ``AB^k`` equals ``A`` but for one column, equal to ``B``'s (``BA^k``
    the converse). Raises :class:`AnalysisError` if the rows do not have this layout.
    """
    n, D = X.shape
    for second_order in (False, True):
        K = 2 * D + 2 if second_order else D + 2
        if n % K or n < K:
            continue
        blocks = X.reshape(n // K, K, D)
        A, B = blocks[:, 0], blocks[:, -1]
        columns: list[int] = []
        ok = True
        for k in range(1, D + 1):
            AB = blocks[:, k]
            diff = np.flatnonzero((AB != A).any(axis=0))
            if len(diff) != 1 or not np.array_equal(AB[:, diff[0]], B[:, diff[0]]):
                ok = False
                break
            columns.append(int(diff[0]))
        if not ok or sorted(columns) != list(range(D)):
            continue
        if second_order:
            for k, c in enumerate(columns, start=D + 1):
                BA = blocks[:, k]
                diff = np.flatnonzero((BA != B).any(axis=0))
                if list(diff) != [c] or not np.array_equal(BA[:, c], A[:, c]):
                    ok = False
                    break
        if ok:
            return n // K, second_order, columns
    raise AnalysisError(
        f"the {n} rows of X are not a Saltelli sample in generation order (blocks of "
        f"{D + 2} or {2 * D + 2} rows: A, AB^1..AB^D, [BA^1..BA^D,] B): rows were "
        "reordered, dropped or come from another design; method 'sobol' needs them all, "
        "as generated; use method 'delta' or 'pawn' on other samples"
    )


# ------------------------------------------------------------------ dependence

#: the chance that some pair of independent inputs is flagged as dependent
DEPENDENCE_ALPHA = 0.01


def dependence_threshold(n: int, pairs: int, alpha: float = DEPENDENCE_ALPHA) -> float:
    """The least ``|rho|`` (Spearman, ``n`` samples) flagged as dependence: under
    independence ``rho`` has mean 0 and variance ``1 / (n - 1)`` and is nearly normal,
    so ``z_{1 - alpha / (2 pairs)} / sqrt(n - 1)`` is exceeded by chance by some of
    ``pairs`` independent pairs with probability at most ``alpha`` (Bonferroni)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1.0 - alpha / (2.0 * max(pairs, 1)))
    return z / float(np.sqrt(max(n - 1, 1)))


def input_dependence(X: pd.DataFrame | np.ndarray, names: Sequence[str] | None = None,
                     alpha: float = DEPENDENCE_ALPHA) -> pd.DataFrame:  # fmt: skip
    """Spearman's rank correlation between every pair of inputs (columns of ``X``):
    one row per pair (``a``, ``b``, ``spearman``, ``threshold``, ``dependent``), the
    pairs in column order; ``threshold`` from :func:`dependence_threshold`."""
    if isinstance(X, pd.DataFrame):
        names, Xv = list(X.columns), X.to_numpy(dtype=np.float64)
    else:
        Xv = np.asarray(X, dtype=np.float64)
        names = list(names) if names is not None else [f"x{i}" for i in range(Xv.shape[1])]
    n, d = Xv.shape
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    ranks = pd.DataFrame(Xv).rank(method="average").to_numpy()  # ties share their rank
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.corrcoef(ranks, rowvar=False) if d > 1 else np.ones((1, 1))
    thr = dependence_threshold(n, len(pairs), alpha)
    rows = [(names[i], names[j], float(rho[i, j]), thr) for i, j in pairs]
    out = pd.DataFrame(rows, columns=["a", "b", "spearman", "threshold"])
    out["dependent"] = out["spearman"].abs() > out["threshold"]
    return out


def dependence_warning(dep: pd.DataFrame, n: int, n_total: int) -> str:
    """The text of the warning for the dependent pairs of :func:`input_dependence`
    (empty if none)."""
    bad = dep[dep["dependent"]].sort_values("spearman", key=np.abs, ascending=False)
    if bad.empty:
        return ""
    pairs = ", ".join(f"{r.a} ~ {r.b} {r.spearman:+.2f}" for r in bad.itertuples())
    return (
        f"the inputs are dependent in the given subset ({n:,} of {n_total:,} samples; "
        "Spearman rank correlation, "
        f"flagged beyond {bad['threshold'].iloc[0]:.3f}, what independent inputs exceed "
        f"by chance with probability {DEPENDENCE_ALPHA:g}): {pairs}. These indices assume "
        "independent inputs: an input correlated with one that drives the output is "
        "credited with part of its effect, so read them as associations, not shares of "
        "the effect. A condition on the inputs alone that is a box (e.g. theta_1 > 2) "
        "keeps them independent; a regime does not"
    )


# ------------------------------------------------------------------ sensitivity


def sensitivity(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    method: Method = "sobol",
    design: str,
    given: np.ndarray | None = None,
    seed: int = 0,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    slides: int = 10,
) -> pd.DataFrame:
    """Sensitivity indices of ``y`` to the columns of ``X``, one row per parameter.

    Parameters
    ----------
    X : samples x parameters, rows in the design's order (for ``sobol``, all rows of a
        Saltelli design, unreordered; the column order is free).
    y : one output per row (float or bool).
    method : ``sobol`` (columns ``S1, S1_conf, ST, ST_conf``), ``delta`` (``delta,
        delta_conf, S1, S1_conf``) or ``pawn`` (``median, median_conf, minimum, mean,
        maximum, CV, stdev``); see the module docstring.
    design : the design the samples came from (``saltelli``, ``sobol``, ``lhs``,
        ``random``, ``grid``); ``sobol`` needs ``saltelli``.
    given : boolean mask of the rows to analyse (a regime); ``delta`` and ``pawn`` only.
    seed : seeds the bootstrap (same seed, same confidence intervals).
    num_resamples, conf_level : bootstrap resamples and the level of ``*_conf``.
    slides : PAWN's number of conditioning slices per parameter.

    Returns
    -------
    DataFrame indexed by parameter (``X``'s column order); ``attrs`` records method,
    design, rows used (``n``), ``n_total``, ``conf_level``, ``num_resamples``, ``seed``,
    and for a second-order Saltelli design the matrices ``S2`` and ``S2_conf``; with
    ``given``, ``dependence`` (:func:`input_dependence` in the subset) and
    ``warnings``, a list of texts (one if some pair of inputs is dependent there,
    naming the pairs and their rank correlations; see the module docstring).
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0 < conf_level < 1:
        raise AnalysisError(f"conf_level must be between 0 and 1; got {conf_level}")
    if not isinstance(num_resamples, int) or num_resamples < 2:
        raise AnalysisError(f"num_resamples must be an integer >= 2; got {num_resamples!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise AnalysisError(f"seed must be an integer >= 0; got {seed!r}")
    names, Xv = _as_table(X)
    yv = _as_output(y, Xv.shape[0])
    n_total = Xv.shape[0]
    attrs: dict[str, Any] = {
        "method": method,
        "design": design,
        "n_total": n_total,
        "conf_level": conf_level,
        "num_resamples": num_resamples,
        "seed": seed,
    }

    if method == "sobol":
        if given is not None:
            raise AnalysisError(
                "method 'sobol' cannot take given: a regime restriction drops rows from the "
                "Saltelli blocks (A, AB^k, B) that the Sobol' estimator needs whole; use "
                "method 'delta' or 'pawn' with given (they work on any subset of samples)"
            )
        if design != "saltelli":
            raise AnalysisError(
                f"method 'sobol' needs a Saltelli design (design: {{saltelli: N, seed: S}}); "
                f"these samples come from a {design!r} design; use method 'delta' or "
                "'pawn', which work on any sample (given data)"
            )
        _check_finite(yv, "")
        _check_varies(yv, "")
        return _sobol(names, Xv, yv, attrs)

    where = ""
    if given is not None:
        g = _as_mask(given, n_total)
        Xv, yv = Xv[g], yv[g]
        where = f" in the given subset ({yv.size} of {n_total} samples)"
    minimum = 4 * slides if method == "pawn" else 100  # delta: 10 bins of >= 10 samples
    if yv.size < minimum:
        raise AnalysisError(
            f"only {yv.size} samples{where}; method {method!r} needs at least {minimum}: "
            "use a larger design or a wider subset"
        )
    _check_finite(yv, where)
    _check_varies(yv, where)
    const = [n for n, c in zip(names, np.ptp(Xv, axis=0)) if c == 0.0]
    if const:
        raise AnalysisError(f"parameters {const} take one value on all samples{where}")
    attrs["n"] = int(yv.size)
    attrs["warnings"] = []
    if given is not None:  # a subset: are the inputs still independent there?
        dep = input_dependence(Xv, names)
        attrs["dependence"] = dep
        text = dependence_warning(dep, int(yv.size), n_total)
        if text:
            attrs["warnings"].append(text)
    if method == "delta":
        if np.unique(yv).size <= 2:
            raise AnalysisError(
                "method 'delta' estimates densities of y with Gaussian kernels, which is "
                "meaningless for an output with two values (a boolean): use method 'pawn' "
                "(distribution functions), or 'sobol' on a Saltelli design"
            )
        return _delta(names, Xv, yv, attrs, seed, num_resamples, conf_level)
    if not isinstance(slides, int) or slides < 2:
        raise AnalysisError(f"slides must be an integer >= 2; got {slides!r}")
    attrs["slides"] = slides
    return _pawn(names, Xv, yv, attrs, seed, num_resamples, conf_level, slides)


def _sobol(names: list[str], Xv: np.ndarray, yv: np.ndarray, attrs: dict) -> pd.DataFrame:
    from SALib.analyze import sobol

    N, second_order, columns = saltelli_layout(Xv)
    order = [names[c] for c in columns]  # generation order
    problem = _problem(order, Xv[:, columns])
    with _salib_state(attrs["seed"]):
        S = sobol.analyze(
            problem,
            yv,
            calc_second_order=second_order,
            num_resamples=attrs["num_resamples"],
            conf_level=attrs["conf_level"],
            seed=attrs["seed"] or None,
        )
    out = pd.DataFrame(
        {k: np.asarray(S[k], dtype=np.float64) for k in ("S1", "S1_conf", "ST", "ST_conf")},
        index=pd.Index(order, name="parameter"),
    ).reindex(names)
    attrs |= {"n": int(yv.size), "base_samples": N, "second_order": second_order}
    if second_order:
        for k in ("S2", "S2_conf"):
            attrs[k] = pd.DataFrame(S[k], index=order, columns=order).reindex(
                index=names, columns=names
            )
    out.attrs = attrs
    return out


def _delta(names, Xv, yv, attrs, seed, num_resamples, conf_level) -> pd.DataFrame:
    from SALib.analyze import delta

    with _salib_state(seed):
        S = delta.analyze(
            _problem(names, Xv),
            Xv,
            yv,
            num_resamples=num_resamples,
            conf_level=conf_level,
            seed=None,  # the global RNG, seeded by _salib_state (SALib skips seed=0)
        )
    out = pd.DataFrame(
        {
            "delta": np.asarray(S["delta_raw"], dtype=np.float64),
            "delta_conf": np.asarray(S["delta_raw_conf"], dtype=np.float64),
            "S1": np.asarray(S["S1"], dtype=np.float64),
            "S1_conf": np.asarray(S["S1_conf"], dtype=np.float64),
        },
        index=pd.Index(names, name="parameter"),
    )
    failed = out.index[out[["delta", "S1"]].isna().any(axis=1)].tolist()
    notes = list(S.get("notes", [""] * len(names)))
    if failed:
        why = "; ".join(f"{n}: {notes[names.index(n)]}" for n in failed)
        raise AnalysisError(f"SALib's delta analysis failed for {failed}: {why}")
    attrs["notes"] = dict(zip(names, notes))
    out.attrs = attrs
    return out


def _pawn(names, Xv, yv, attrs, seed, num_resamples, conf_level, slides) -> pd.DataFrame:
    from SALib.analyze import pawn

    problem = _problem(names, Xv)
    cols = ("median", "minimum", "mean", "maximum", "CV", "stdev")
    with _salib_state(seed):
        S = pawn.analyze(problem, Xv, yv, S=slides)
        rng = np.random.default_rng(seed)
        n = yv.size
        boot = np.empty((num_resamples, len(names)))
        for b in range(num_resamples):
            idx = rng.integers(0, n, size=n)
            boot[b] = pawn.analyze(problem, Xv[idx], yv[idx], S=slides)["median"]
    out = pd.DataFrame(
        {k: np.asarray(S[k], dtype=np.float64) for k in cols},
        index=pd.Index(names, name="parameter"),
    )
    out.insert(1, "median_conf", _z(conf_level) * boot.std(axis=0, ddof=1))
    attrs["median_conf"] = "bootstrap (row resamples with replacement), not SALib's"
    out.attrs = attrs
    return out


# ------------------------------------------------------------------------- PRIM


@dataclass(frozen=True)
class Discovery:
    """A PRIM result.

    ``trajectory``: one row per box along the peeling (and pasting) trajectory, columns
    ``coverage, density, mass, res_dim`` and ``<name>_min``, ``<name>_max`` per parameter
    (an unrestricted parameter keeps the sample's range). ``chosen``: the row picked
    (the highest coverage among the boxes with density >= ``threshold``; the densest if
    none reaches it). ``box``: the chosen box, indexed by parameter, columns ``min, max,
    restricted`` and ``qp`` (quasi-p-value of the restriction, Bryant & Lempert 2010;
    NaN where unrestricted).
    """

    trajectory: pd.DataFrame
    chosen: int
    box: pd.DataFrame
    threshold: float
    meets_threshold: bool

    @property
    def coverage(self) -> float:
        return float(self.trajectory["coverage"].iloc[self.chosen])

    @property
    def density(self) -> float:
        return float(self.trajectory["density"].iloc[self.chosen])

    @property
    def mass(self) -> float:
        return float(self.trajectory["mass"].iloc[self.chosen])

    def inside(self, X: pd.DataFrame) -> np.ndarray:
        """Which rows of ``X`` lie in the chosen box (closed limits, as PRIM's)."""
        inside = np.ones(len(X), dtype=bool)
        for name, row in self.box[self.box["restricted"]].iterrows():
            v = X[name].to_numpy()
            inside &= (v >= row["min"]) & (v <= row["max"])
        return inside


def discover(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    threshold: float = 0.8,
    peel_alpha: float = 0.05,
    paste_alpha: float = 0.05,
    mass_min: float = 0.05,
) -> Discovery:
    """PRIM scenario discovery: the box of parameters where ``y`` (the cases of interest)
    is dense, with the whole peeling trajectory (the ``prim`` package).

    ``threshold`` is the density the chosen box must reach; ``peel_alpha`` the share of
    the box's points peeled off per step (the resolution of the limits), ``paste_alpha``
    the share pasted back, ``mass_min`` the smallest box (share of all samples).
    """
    import prim

    names, Xv = _as_table(X)
    yv = np.asarray(y)
    if yv.dtype != bool:
        if yv.ndim == 1 and np.isin(yv, (0, 1)).all():
            yv = yv.astype(bool)
        else:
            raise AnalysisError("y must be booleans (or 0/1): True marks a case of interest")
    if yv.shape != (Xv.shape[0],):
        raise AnalysisError(f"y must have one value per sample; got shape {yv.shape}")
    k = int(yv.sum())
    if k == 0 or k == yv.size:
        raise AnalysisError(
            f"y is {'True' if k else 'False'} on all {yv.size} samples: there is no box to "
            "find (PRIM needs cases of interest and others)"
        )
    for what, v, lo, hi in (
        ("threshold", threshold, 0.0, 1.0),
        ("peel_alpha", peel_alpha, 0.0, 0.5),
        ("paste_alpha", paste_alpha, 0.0, 0.5),
        ("mass_min", mass_min, 0.0, 1.0),
    ):
        if not (isinstance(v, (int, float)) and lo < v <= hi):
            raise AnalysisError(f"{what} must be a number in ({lo:g}, {hi:g}]; got {v!r}")

    table = pd.DataFrame(Xv, columns=names)
    p = prim.Prim(table, yv, peel_alpha=peel_alpha, paste_alpha=paste_alpha, mass_min=mass_min)
    box = p.find_box()
    traj = box.peeling_trajectory.reset_index(drop=True)
    rows = []
    limits = []
    lo, hi = Xv.min(axis=0), Xv.max(axis=0)
    for i in range(len(traj)):
        box.select(i)
        lim = box.limits
        row: dict[str, float] = {
            "coverage": float(traj["coverage"].iloc[i]),
            "density": float(traj["density"].iloc[i]),
            "mass": float(traj["mass"].iloc[i]),
            "res_dim": int(traj["res dim"].iloc[i]),
        }
        for j, name in enumerate(names):
            restricted = name in lim.index
            row[f"{name}_min"] = float(lim.loc[name, "min"]) if restricted else float(lo[j])
            row[f"{name}_max"] = float(lim.loc[name, "max"]) if restricted else float(hi[j])
        rows.append(row)
        limits.append(lim)
    trajectory = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="step"))

    ok = trajectory["density"] >= threshold
    if ok.any():
        cand = trajectory[ok]
        # the most coverage; then the fewest restricted parameters; then the densest
        best = cand.sort_values(
            ["coverage", "res_dim", "density"], ascending=[False, True, False], kind="stable"
        )
        chosen = int(best.index[0])
    else:
        chosen = int(trajectory["density"].to_numpy().argmax())
        warnings.warn(
            f"no PRIM box reaches density {threshold:g} (the densest has "
            f"{trajectory['density'].max():.3g}); chose the densest",
            stacklevel=2,
        )
    box.select(chosen)
    lim = limits[chosen]
    chosen_box = pd.DataFrame(
        {
            "min": [trajectory.at[chosen, f"{n}_min"] for n in names],
            "max": [trajectory.at[chosen, f"{n}_max"] for n in names],
            "restricted": [n in lim.index for n in names],
            "qp": [float(lim.loc[n, "qp values"]) if n in lim.index else np.nan for n in names],
        },
        index=pd.Index(names, name="parameter"),
    )
    return Discovery(trajectory, chosen, chosen_box, float(threshold), bool(ok.any()))


# ---------------------------------------------------------------------- figures


def plot_peeling(result: Discovery, ax=None):
    """Coverage against density along the peeling trajectory, coloured by the number of
    restricted parameters; the chosen box ringed. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
    t = result.trajectory
    top = int(t["res_dim"].max())
    cmap = plt.get_cmap("viridis", top + 1)
    ax.plot(t["coverage"], t["density"], color="0.7", lw=0.8, zorder=1)
    sc = ax.scatter(
        t["coverage"],
        t["density"],
        c=t["res_dim"],
        cmap=cmap,
        vmin=-0.5,
        vmax=top + 0.5,
        s=18,
        zorder=2,
    )
    ax.scatter(
        [result.coverage],
        [result.density],
        s=120,
        facecolors="none",
        edgecolors="#d55e00",
        linewidths=1.8,
        zorder=3,
        label=f"chosen (step {result.chosen})",
    )
    ax.axhline(result.threshold, color="#d55e00", ls=":", lw=1, label="density threshold")
    ax.figure.colorbar(sc, ax=ax, label="restricted parameters", ticks=range(top + 1))
    ax.set_xlabel("coverage")
    ax.set_ylabel("density")
    ax.set_title("PRIM peeling trajectory")
    ax.legend(loc="lower left", fontsize="small")
    return ax


def plot_box(result: Discovery, ax=None, log: Sequence[str] = ()):
    """The chosen box: per parameter, its limits as a bar over the sample's range,
    scaled to [0, 1] (in log for the parameters named in ``log``, e.g. the loguniform
    ones); restricted parameters in colour, with their limits written. Returns the Axes."""
    import matplotlib.pyplot as plt

    box = result.box
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 0.5 + 0.45 * len(box)), layout="constrained")
    t0 = result.trajectory.iloc[0]
    for i, (name, row) in enumerate(box.iterrows()):
        f = np.log if name in log else (lambda v: v)
        lo, hi = f(t0[f"{name}_min"]), f(t0[f"{name}_max"])
        span = hi - lo if hi > lo else 1.0
        a, b = (f(row["min"]) - lo) / span, (f(row["max"]) - lo) / span
        color = "#0072b2" if row["restricted"] else "#bbbbbb"
        ax.barh(i, b - a, left=a, height=0.5, color=color)
        if row["restricted"]:
            text = f"[{row['min']:.4g}, {row['max']:.4g}]"
            ax.text(b + 0.01, i, text, va="center", fontsize="small")
    labels = [f"{n} (log)" if n in log else n for n in box.index]
    ax.set_yticks(range(len(box)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.35)
    ax.set_xlabel("share of the sampled range")
    ax.set_title(
        f"chosen box: coverage {result.coverage:.2f}, density {result.density:.2f}, "
        f"mass {result.mass:.2f}",
        fontsize="medium",
    )
    return ax


def plot_discovery(result: Discovery, fig=None, log: Sequence[str] = ()):
    """Both panels side by side: :func:`plot_peeling` and :func:`plot_box`. Returns the
    Figure."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(10.5, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    plot_peeling(result, ax=ax1)
    plot_box(result, ax=ax2, log=log)
    return fig
