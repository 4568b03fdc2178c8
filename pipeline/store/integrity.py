"""Where a chunk belongs: a chunk read in a done block must be the one written there.

Every chunk ends with the CRC-32C of its encoded bytes (zarr's ``crc32c`` codec, the
last of every variable's codecs: :func:`pipeline.store.schema.encoding`), so a flipped
or truncated chunk fails to decode. A whole, valid chunk copied or swapped from
another block (or another cube) decodes fine, though: the checksum covers the bytes,
not where they lie, and a zarr v3 codec cannot mix the position in (``ArraySpec``,
what a codec's ``_encode_single(chunk, chunk_spec)`` is given, holds the chunk's
shape, dtype and fill value, never its coordinates or key).

So the position is checked beside zarr, at no cost to the chunk format: when a block
is written, the writer reads back the four checksum bytes of each variable's chunk
(the last four bytes of its file) and records them in the block's completion mark
(``"crc32c": {variable: value}``, next to the block's digests). When a cube is opened,
:func:`check` reads the last four bytes of every done block's chunk files and compares
them with the mark of the block whose key the chunk sits under: a chunk from
elsewhere carries another checksum (equal only if its bytes are equal, i.e. the same
values), a missing file has none. Such a block reads as not computed (``done`` False,
the other variables masked) with a :class:`~pipeline.store.read.DamagedCubeWarning`,
as a missing chunk always did. The chunk's own bytes are then checked by zarr's codec
when it is decoded, so the pair (key -> checksum in the mark, checksum -> bytes)
ties every value read to the block it was written for.

A chunk whose bytes changed in place keeps its key and its stored checksum, so this
check passes it; zarr's codec then finds the bytes disagree with the checksum when the
chunk is decoded. Inside :func:`pipeline.store.open_cube` that codec is zarr's own with
one change (:func:`tolerant`): the chunk decodes to nothing, which zarr reads as the
fill value, with a warning, instead of an exception in the middle of a computation.

Cost: one ``open`` and a four-byte read per chunk of a done block, replacing the
directory listing that found missing chunks before; the data are neither read nor
hashed (``benchmarks/bench_read.py``). Cubes written before the marks held checksums
(format 2 marks without ``crc32c``) read as before, unchecked for position;
``marshall verify`` (digests of whole blocks) still finds misplaced chunks in them.
The chunk files and their codecs are unchanged, so every cube's values are the same.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np


def chunk_layout(vdir: Path) -> tuple[list[int], list[int], str] | None:
    """``(shape, chunk shape, key separator)`` of a stored array, from its metadata."""
    try:
        meta = json.loads((Path(vdir) / "zarr.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    grid = meta.get("chunk_grid", {}).get("configuration", {})
    enc = meta.get("chunk_key_encoding", {})
    sep = enc.get("configuration", {}).get("separator", "/")
    if enc.get("name", "default") != "default":
        return None
    return list(meta.get("shape", [])), list(grid.get("chunk_shape", [])), sep


def chunk_file(vdir: Path, idx: Iterable[int], sep: str) -> Path:
    """The file of the chunk at grid index ``idx`` (zarr v3 default key encoding)."""
    return Path(vdir) / sep.join(["c", *(str(int(i)) for i in idx)])


def tail(f: Path) -> int | None:
    """The CRC-32C a chunk file ends with (``None``: no such file, or too short)."""
    try:
        fd = os.open(f, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < 4:
            return None
        b = os.pread(fd, 4, size - 4)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int.from_bytes(b, "little") if len(b) == 4 else None


def layouts(gdir: Path, names, ndim: int) -> dict[str, tuple]:
    """Per variable: ``(directory, chunk grid and chunk shape over the swept dims,
    extra-dim chunk indices (all 0: extra dims are whole), key separator)``; variables
    whose extra dims span several chunks are left out (not written by marshall)."""
    out = {}
    for name in names:
        vdir = Path(gdir) / str(name)
        g = chunk_layout(vdir)
        if g is None:
            continue
        shape, chunks, sep = g
        nch = [math.ceil(s / c) for s, c in zip(shape[:ndim], chunks[:ndim])]
        extra = [math.ceil(s / c) for s, c in zip(shape[ndim:], chunks[ndim:])]
        if any(e != 1 for e in extra):
            continue
        out[str(name)] = (vdir, nch, chunks[:ndim], [0] * len(extra), sep)
    return out


def written(lay: dict[str, tuple], region: tuple[slice, ...]) -> dict[str, int]:
    """The checksums of the chunks just written for the block at ``region`` (swept
    dims), read back from disk: what the block's completion mark records. ``lay``:
    :func:`layouts` of the variables."""
    out = {}
    for name, (vdir, _, chunks, extra, sep) in lay.items():
        idx = [s.start // c for s, c in zip(region, chunks)]
        crc = tail(chunk_file(vdir, [*idx, *extra], sep))
        if crc is not None:
            out[name] = crc
    return out


def check(
    gdir: Path, names, ndim: int, blocks, mark: Callable[[int], dict | None]
) -> tuple[set[int], set[int]]:
    """``(missing, misplaced)``: blocks among ``blocks`` (ids over the swept dims, C order)
    with some variable's chunk file absent, and those whose chunk is not the one written
    there (its checksum differs from the block's mark, the mark names another block, or
    the mark cannot be read). ``mark(b)`` reads block ``b``'s completion mark."""
    lay = layouts(gdir, names, ndim)
    missing: set[int] = set()
    misplaced: set[int] = set()
    for b in sorted(blocks):
        m = mark(b)
        if m is None or m.get("block", b) != b:
            misplaced.add(b)
            m = {}
        want = m.get("crc32c") or {}
        for name, (vdir, nch, _, extra, sep) in lay.items():
            idx = [int(i) for i in np.unravel_index(b, nch)] if ndim else []
            crc = tail(chunk_file(vdir, [*idx, *extra], sep))
            if crc is None:
                missing.add(b)
                break
            if name in want and crc != want[name]:
                misplaced.add(b)
    return missing, misplaced


# ------------------------------------------------- temporary files of a killed write

#: zarr's LocalStore writes ``<key>.<uuid4 hex>.partial`` and renames it into place
#: (chunks: ``c/.../<i>``, metadata: ``zarr.json`` -> ``zarr.<hex>.partial``)
_ZARR_TMP = re.compile(r"^(?:\d+|zarr)\.[0-9a-f]{32}\.partial$")
#: marshall's own atomic writes (store/cube.py ``_atomic_write``): ``.<name>.<8 hex>.tmp``
_OWN_TMP = re.compile(r"^\.(?:\d+\.json|plan\.json|meta\.json|zarr\.json)\.[0-9a-f]{8}\.tmp$")


def leftovers(path: Path) -> list[Path]:
    """Temporary files a killed write left inside the store ``path``: only names that
    marshall's writes (through zarr or its own atomic writes) create, nothing else."""
    out = []
    for d, _, files in os.walk(Path(path)):
        for f in files:
            if _ZARR_TMP.match(f) or _OWN_TMP.match(f):
                out.append(Path(d) / f)
    return sorted(out)


def remove_leftovers(path: Path) -> int:
    """Remove :func:`leftovers` (call only while no other process writes the store: the
    whole-store writer lock held). Returns how many were removed."""
    n = 0
    for f in leftovers(path):
        if f.is_file() and not f.is_symlink():
            f.unlink(missing_ok=True)
            n += 1
    return n


# ------------------------------------------------- a chunk that fails its checksum


def _tolerant_class():
    """zarr's ``crc32c`` codec, except that a chunk failing its checksum decodes to
    nothing (zarr then reads the chunk as the fill value: NaN, -1, False) with a
    :class:`~pipeline.store.read.DamagedCubeWarning`, instead of raising in the middle
    of a computation. Only the reader (:func:`tolerant`) selects it; ``verify`` and
    every writer keep zarr's own, which raises."""
    import warnings

    from zarr.codecs import Crc32cCodec

    class TolerantCrc32c(Crc32cCodec):
        def _decode_sync(self, chunk_bytes, chunk_spec):
            try:
                return super()._decode_sync(chunk_bytes, chunk_spec)
            except ValueError:
                from .read import DamagedCubeWarning

                warnings.warn(
                    "a chunk failed its CRC-32C check (corrupted on disk); it reads as not "
                    "computed. Run `marshall verify <cube> --repair` to recompute it.",
                    DamagedCubeWarning,
                    stacklevel=2,
                )
                return None

        async def _decode_single(self, chunk_bytes, chunk_spec):
            return self._decode_sync(chunk_bytes, chunk_spec)

    TolerantCrc32c.__module__ = __name__
    globals()["TolerantCrc32c"] = TolerantCrc32c  # pickled by reference (dask workers)
    return TolerantCrc32c


_TOLERANT = None


def __getattr__(name: str):  # a worker unpickling an array made here
    if name == "TolerantCrc32c":
        tolerant()
        return globals()[name]
    raise AttributeError(name)


def tolerant():
    """A zarr config context in which arrays opened decode a chunk that fails its
    checksum as missing (see :func:`_tolerant_class`)."""
    global _TOLERANT
    import zarr
    from zarr.registry import register_codec

    if _TOLERANT is None:
        _TOLERANT = _tolerant_class()
        register_codec("crc32c", _TOLERANT, qualname=f"{__name__}.TolerantCrc32c")
    return zarr.config.set({"codecs.crc32c": f"{__name__}.TolerantCrc32c"})
