"""``marshall verify``: is every block of a cube on disk, readable and what was written?

For every block it checks that the block is marked done, that every variable's chunk
of it exists and decodes (CRC-32C, compression), that ``done`` is set on all of its
points and that the data equals what was written (the digest in the block's
completion mark). A damaged block can be recomputed (:func:`repair`): its mark is
dropped and the run computes it again, bit for bit on the same kind of machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..grid import Plan
from .cube import StoreError, done_blocks, marker, read_marker, reopen_for_repair
from .schema import schema


@dataclass
class Report:
    n_blocks: int
    done: int
    missing: list[int] = field(default_factory=list)  # not computed yet
    damaged: dict[int, list[str]] = field(default_factory=dict)  # marked done, but wrong

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged


def _check_block(spec, plan, arrays, sch, b: int) -> list[str]:
    from .cube import digest

    m = read_marker(spec.output, b)
    if m is None:
        return ["completion mark unreadable"]
    region = plan.region(b)
    want = m.get("digests") or {}
    problems = []
    for name, v in sch.items():
        try:
            data = np.asarray(arrays[name][region + (slice(None),) * len(v.extra)])
        except Exception as exc:  # a chunk that does not decode: checksum, codec, truncation
            problems.append(f"{name}: chunk unreadable ({type(exc).__name__}: {exc})"[:200])
            continue
        if name == "done" and not data.all():
            problems.append("done: not set on every point")
        if name in want and digest(data.astype(v.dtype, copy=False)) != want[name]:
            problems.append(f"{name}: data differ from what was written (missing or altered)")
    return problems


def verify(spec) -> Report:
    """Check every block of the cube of ``spec`` (its output path); a refined cube's
    levels by :func:`pipeline.store.levels.verify` (blocks keyed ``(level, block)``)."""
    import zarr

    if spec.refine is not None:
        from .levels import verify as verify_levels

        return verify_levels(spec)
    plan = Plan.of(spec)
    done = done_blocks(spec.output)
    rep = Report(plan.n_blocks, len(done))
    rep.missing = [b for b in plan.blocks() if b not in done]
    sch = schema(spec)
    root = zarr.open_group(spec.output, mode="r", zarr_format=3)
    arrays = {}
    for name in sch:
        try:
            arrays[name] = root[name]
        except KeyError:
            rep.damaged = {b: [f"variable {name} is missing from the store"] for b in done}
            return rep
    for b in sorted(done):
        problems = _check_block(spec, plan, arrays, sch, b)
        if problems:
            rep.damaged[b] = problems
    return rep


def repair(spec, report: Report, **run_kw) -> dict:
    """Recompute the damaged blocks of ``report`` (and any missing ones) and finalize."""
    from ..run import run

    if spec.refine is not None:
        from .levels import repair as repair_levels

        return repair_levels(spec, report, **run_kw)
    if report.damaged:
        reopen_for_repair(Path(spec.output))
        for b in report.damaged:
            marker(spec.output, b).unlink(missing_ok=True)
    if not report.damaged and not report.missing:
        raise StoreError("nothing to repair")
    return run(spec, **run_kw)
