"""A cube's schema, from the model's declaration: variables, coordinates, attributes.

Every variable is a model :class:`~pipeline.models._spec.Output` over the swept dims
plus its own, and ``done`` (the point was computed). Attributes follow CF where it has
a convention (``long_name``, UDUNITS ``units``, ``flag_values``/``flag_meanings``,
``flag_masks``) and hold only what netCDF can hold (strings, numbers and lists of
them), so ``ds.to_netcdf`` works on any cube.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..config import SweepSpec
from ..models._spec import DOCS, KNIFE_TOL, Output, int_flag_attrs

FORMAT_VERSION = 2
DONE = Output("done", (), "bool", False, "point computed (false: not yet written)")


@dataclass(frozen=True)
class Var:
    """A variable as stored: the model's output with its full dims and shape."""

    out: Output
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    @property
    def extra(self) -> tuple[str, ...]:
        return self.out.dims

    @property
    def dtype(self) -> str:
        return self.out.dtype

    @property
    def fill(self) -> Any:
        return self.out.fill


def schema(spec: SweepSpec) -> dict[str, Var]:
    """Every variable of a sweep's cube, ``done`` last."""
    from ..grid import dim_sizes

    sizes = dim_sizes(spec)
    out = {}
    for o in (*spec.decl.outputs_for(spec.save_paths), DONE):
        out[o.name] = Var(
            o,
            spec.dims + o.dims,
            spec.shape + tuple(sizes[d] for d in o.dims),
            spec.chunks + tuple(sizes[d] for d in o.dims),
        )
    return out


def param_attrs(spec: SweepSpec, name: str) -> dict[str, str]:
    """CF-style attributes of a parameter coordinate, with the paper's symbol (LaTeX)."""
    hit = spec.decl.param(spec.canonical_name(name), spec.J)
    if hit is None:
        return {"long_name": name, "units": "1"}
    param, _, sector = hit
    return param.attrs(sector)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("marshall", "jax", "jaxlib", "numpy", "xarray", "zarr", "dask", "distributed",
                "diffrax"):  # fmt: skip
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        commit = res.stdout.strip() if res.returncode == 0 else "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        ).stdout.strip()  # fmt: skip
        return commit + ("-dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _flag_attrs(o: Output, labels: list[str]) -> dict[str, Any]:
    if o.flags == "labels":
        return {"flag_values": [-1, *range(len(labels))], "flag_meanings": " ".join(
            ["none", *labels])}  # fmt: skip
    if o.flags == "claims":
        return {"flag_values": [-1, 0, 1],
                "flag_meanings": "not_applicable_or_not_computed failed held"}  # fmt: skip
    if isinstance(o.flags, type) and issubclass(o.flags, enum.IntFlag):
        text = o.flag_text or {}
        bits = {str(int(m.value)): text.get(m, m.name.lower()) for m in o.flags if m.value}
        return int_flag_attrs(o.flags) | {"status_bits": json.dumps(bits)}
    return {}


def template(spec: SweepSpec) -> xr.Dataset:
    """The cube with every variable lazily at its fill value (nothing computed)."""
    import dask.array as da

    model = spec.decl
    labs = model.labels(spec.J)
    coords: dict[str, Any] = {}
    for a in spec.axes:
        coords[a.name] = xr.Variable(
            (a.name,), a.values, attrs=param_attrs(spec, a.name) | {"spacing": a.spacing}
        )
    if spec.design is not None:  # one point per sample; each sampled parameter along it
        n = spec.design.size
        coords["sample"] = xr.Variable(
            ("sample",), np.arange(n), {"long_name": f"sample of the {spec.design.design.kind} "
                                        "design (row order kept)"})  # fmt: skip
        for name, values in spec.samples.items():
            dist = spec.design.dists[name].canonical()
            kind, (lo, hi) = next(iter(dist.items()))
            coords[name] = xr.Variable(
                ("sample",), values,
                attrs=param_attrs(spec, name) | {"distribution": f"{kind} [{lo!r}, {hi!r}]",
                                                 "spacing": "log" if kind == "loguniform"
                                                 else "linear"},
            )  # fmt: skip
    coords["equilibrium"] = (
        "equilibrium",
        np.array(labs, dtype=object),
        {"long_name": f"equilibrium label ({model.doc})"},
    )
    coords["claim"] = (
        "claim",
        np.array(model.claim_labels(), dtype=object),
        {"long_name": "claim of the paper", "statements": json.dumps(model.claim_text())},
    )
    for d, (values, attrs) in model.extra_dims(spec).items():
        coords[d] = (d, values, attrs)
    for k, val in spec.fixed.items():
        coords[k] = xr.Variable((), val, attrs=param_attrs(spec, k))

    stable_bits = [lab for lab in labs if model.stable_capable(lab)]
    data_vars = {}
    for name, v in schema(spec).items():
        o = v.out
        # one lazy dask chunk (never computed: the template writes metadata only), the
        # store's chunks from the encoding, so a cube of a billion chunks costs no graph
        arr = da.full(v.shape, o.fill, dtype=o.dtype, chunks=v.shape or -1)
        attrs: dict[str, Any] = {"long_name": o.long_name}
        if o.units:
            attrs["units"] = o.units
        if o.comment:
            attrs["comment"] = o.comment
        attrs |= _flag_attrs(o, labs)
        if name == "regime":
            attrs |= {
                "regime_bits": labs,
                "comment": "bit i set when equilibrium i is stable; "
                f"stable-capable: {' '.join(stable_bits)}",
            }
        data_vars[name] = xr.Variable(v.dims, arr, attrs=attrs)

    attrs = {
        "title": f"marshall sweep {spec.name}: model {spec.model}",
        "model": spec.model,
        "sectors": spec.J,
        "description": spec.description,
        "config": spec.text,
        "config_canonical": json.dumps(spec.canonical, sort_keys=True),
        "config_hash": spec.config_hash,
        "versions": json.dumps(_versions(), sort_keys=True),
        "git_commit": _git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "knife_edge_tolerance": KNIFE_TOL,
        "Conventions": "CF-1.10",
        "comment": "existence uses weak inequalities; a condition within the knife-edge "
        f"tolerance counts as holding with equality ({DOCS}#knife-edge-points)",
        "source": f"marshall, {model.doc} ({model.source})",
        "references": f"{DOCS}#references",
        "complete": 0,
    }
    if spec.design is not None:
        attrs["design"] = json.dumps(spec.design.canonical()["design"], sort_keys=True)
        attrs["sampled"] = " ".join(spec.sampled)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def encoding(spec: SweepSpec) -> dict[str, dict]:
    """Fill values and codecs. Every chunk carries a CRC-32C checksum (a corrupted or
    truncated chunk fails to decode instead of reading as data). The saved paths
    (float64 over ``time``, most of a dynamic cube) are compressed with Blosc LZ4 and
    byte shuffle, which wrote them 2.8x faster than zarr's default Zstd and smaller
    (1.8x against 1.4x); every other variable keeps Zstd, ~8x smaller on the
    classification codes (benchmarks/RESULTS.md)."""
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    out = {}
    for name, v in schema(spec).items():
        comp = (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle") if v.out.paths
                else ZstdCodec(level=0, checksum=False))  # fmt: skip
        out[name] = {"fill_value": v.fill, "compressors": [comp, Crc32cCodec()],
                     "chunks": v.chunks}  # fmt: skip
    return out
