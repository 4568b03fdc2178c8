"""``marshall verify``: is every block of a cube on disk, readable and what was written?

For every block it checks that the block is marked done, that every variable's chunk
of it exists and decodes (CRC-32C, compression), that ``done`` is set on all of its
points and that the data equals what was written (the digest in the block's
completion mark). A damaged block can be recomputed (:func:`repair`): its mark is
dropped and the run computes it again, bit for bit on the same kind of machine.

Beyond the blocks (:func:`store_problems`, both kinds of cube): the root ``config``
against the stored hash, every coordinate, attribute and array's metadata against
the record of what marshall wrote (store/meta.py), and temporary files left inside
the store by a killed write (store/integrity.py). A repair restores the metadata from
the record and the config first (or says what it cannot), never consolidating without
an array, and the run it starts removes the temporary files.
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
    problems: list[str] = field(default_factory=list)  # of the store: metadata, leftovers
    fix: dict | None = None  # what store/meta.py's restore would write
    spec: object = None  # the sweep the cube was written for (its stored config hash)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged and not self.problems


def store_problems(spec) -> tuple[object, list[str], dict, set[str]]:
    """``(spec, problems, fix, lost)``: the sweep the cube was written for, what is
    wrong beyond its blocks (metadata: store/meta.py; temporary files of killed
    writes: store/integrity.py), what a repair writes back, and the arrays whose
    ``zarr.json`` is missing but restorable (their blocks are not counted damaged)."""
    from .integrity import leftovers
    from .meta import check

    problems, fix = check(spec.output, spec)
    spec = fix["spec"]
    left = leftovers(spec.output)
    if left:
        rel = [str(p.relative_to(spec.output)) for p in left[:3]]
        problems.append(f"{len(left)} temporary file(s) left by a killed write (first: "
                        f"{', '.join(rel)}); a repair or resumed run removes them")  # fmt: skip
    lost = {rel.split("/")[-1] for rel in fix["nodes"]}
    return spec, problems, fix, lost


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
    spec, problems, fix, lost = store_problems(spec)
    plan = Plan.of(spec)
    done = done_blocks(spec.output)
    rep = Report(plan.n_blocks, len(done), problems=problems, fix=fix, spec=spec)
    rep.missing = [b for b in plan.blocks() if b not in done]
    sch = schema(spec)
    root = zarr.open_group(spec.output, mode="r", zarr_format=3)
    arrays = {}
    for name in sch:
        try:
            arrays[name] = root[name]
        except KeyError:
            if name in lost:  # its metadata is restored first; then its blocks are checked
                continue
            rep.damaged = {b: [f"variable {name} is missing from the store"] for b in done}
            return rep
    sch = {n: v for n, v in sch.items() if n in arrays}
    for b in sorted(done):
        problems = _check_block(spec, plan, arrays, sch, b)
        if problems:
            rep.damaged[b] = problems
    return rep


def repair(spec, report: Report, **run_kw) -> dict:
    """Recompute the damaged blocks of ``report`` (and any missing ones) and finalize."""
    from ..run import run

    spec = report.spec or spec
    if report.ok:
        raise StoreError("nothing to repair")
    restore_store(spec, report)
    if spec.refine is not None:
        from .levels import repair as repair_levels

        return repair_levels(spec, report, **run_kw)
    if report.damaged:
        reopen_for_repair(Path(spec.output), spec)
        for b in report.damaged:
            marker(spec.output, b).unlink(missing_ok=True)
    return run(spec, **run_kw)  # resumes: removes temporary files, computes, finalizes


def restore_store(spec, report) -> None:
    """Write back the metadata, coordinates and config :func:`store_problems` found
    changed (under the writer lock); raise, naming each, if some cannot be."""
    from .lock import writer_lock
    from .meta import restore

    fix = report.fix or {}
    if not (fix.get("nodes") or fix.get("values") or fix.get("config") or fix.get("consolidate")):
        return
    with writer_lock(spec.output):
        cannot = restore(Path(spec.output), fix)
    if cannot:
        raise StoreError(f"{spec.output}: cannot restore " + "; ".join(cannot))
