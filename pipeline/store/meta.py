"""What gives a cube's values their meaning: coordinates, attributes, array metadata.

A block's digests (store/cube.py) cover its data, not what the data mean: a coordinate
rewritten relabels every point, swapped ``flag_meanings`` rename the regimes, an
edited root ``config`` describes another sweep, and an array whose ``zarr.json`` is
deleted is still read through the root's consolidated copy until a re-consolidation
drops it. So the store keeps a record of all of it, ``_marshall/meta.json``, written
atomically whenever marshall itself writes metadata (the template, :func:`finalize`,
a repair reopening the cube):

- ``nodes``: every group's and array's ``zarr.json`` outside ``_marshall`` as written
  (without the root's ``consolidated_metadata``, which must equal the nodes);
- ``values``: a digest of the stored values of every array that is not a variable of
  the schema (coordinates, labels, fixed parameters);
- ``config_hash``: the sweep's, which ``_marshall``'s attributes hold too.

:func:`check` compares the store with the record: a node missing or different (the
attributes that differ are named), the consolidated copy of a node different from it,
coordinate values different, the root ``config`` not hashing to the stored hash. The
record itself is trusted only if its ``config_hash`` is the sweep's and its own digest
holds. :func:`restore` writes the recorded documents back, the coordinate values
derived again from the config (:func:`coordinate_values`, checked against the recorded
digest before anything is written), then consolidates: never without an array the
record names, so a repair cannot drop one. What cannot be restored is said.

A cube written before the record existed has none: its root ``config`` is checked
against the stored hash and its coordinates against the config; attributes and array
metadata are unchecked (said by :func:`check`); an array whose ``zarr.json`` is missing
is restored from the root's consolidated copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .cube import STATE
from .errors import StoreError

RECORD = "meta.json"


def record_path(path: Path) -> Path:
    return Path(path) / STATE / RECORD


def _full(f: Path) -> dict | None:
    """A ``zarr.json`` as stored (``None``: missing or not a JSON object)."""
    try:
        d = json.loads(Path(f).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) else None


def _doc(f: Path) -> dict | None:
    """A ``zarr.json`` without the root's ``consolidated_metadata``."""
    d = _full(f)
    if d is not None:
        d.pop("consolidated_metadata", None)
    return d


def _consolidated(path: Path) -> dict | None:
    """The root's consolidated copies of the nodes' metadata (``None``: none)."""
    root = _full(Path(path) / "zarr.json") or {}
    return (root.get("consolidated_metadata") or {}).get("metadata")


def nodes(path: Path) -> dict[str, dict | None]:
    """Every node's ``zarr.json`` (``""``: the root), outside ``_marshall``, as stored."""
    path = Path(path)
    out: dict[str, dict | None] = {}
    for d, dirs, files in os.walk(path):
        rel = os.path.relpath(d, path)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        if rel.split("/")[0] == STATE:
            dirs[:] = []
            continue
        if "zarr.json" in files:
            doc = _doc(Path(d) / "zarr.json")
            out[rel] = doc
            if doc is not None and doc.get("node_type") == "array":
                dirs[:] = []  # chunks below
        else:
            dirs[:] = [x for x in dirs if x != "c"]
    return out


def _digest_values(a: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=12)
    a = np.asarray(a)
    if a.dtype.kind in "OUST":  # strings (numpy 2 StringDType: "T")
        h.update(json.dumps([str(x) for x in a.ravel().tolist()]).encode())
        h.update(str(a.shape).encode())
    else:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _data_names(spec) -> set[str]:
    from ..grid import level_spec
    from .schema import schema

    sp = spec if spec.refine is None else level_spec(spec, spec.refine.grid.levels)
    return set(schema(sp))


def _is_value_node(rel: str, doc: dict | None, data: set[str]) -> bool:
    return doc is not None and doc.get("node_type") == "array" and rel.split("/")[-1] not in data


def values(path: Path, spec, found: dict[str, dict | None]) -> dict[str, str | None]:
    """Digests of the stored values of every coordinate-like array (``None``: unreadable)."""
    import zarr

    data = _data_names(spec)
    out: dict[str, str | None] = {}
    for rel, doc in found.items():
        if not _is_value_node(rel, doc, data):
            continue
        try:
            out[rel] = _digest_values(zarr.open_array(Path(path) / rel, mode="r")[...])
        except Exception:  # unreadable: damage to report, not to raise
            out[rel] = None
    return out


def _seal(rec: dict) -> str:
    body = {k: v for k, v in rec.items() if k != "digest"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def record(path: Path, spec) -> dict:
    """Record the store's metadata as it is now (marshall just wrote it)."""
    from .cube import _atomic_write

    path = Path(path)
    found = nodes(path)
    rec: dict[str, Any] = {
        "config_hash": spec.config_hash,
        "nodes": found,
        "values": values(path, spec, found),
    }
    rec["digest"] = _seal(rec)
    _atomic_write(record_path(path), json.dumps(rec, sort_keys=True))
    return rec


def read_record(path: Path, config_hash: str | None) -> dict | None:
    """The record, if it is whole and of this sweep (else ``None``)."""
    try:
        rec = json.loads(record_path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or rec.get("digest") != _seal(rec):
        return None
    if config_hash is not None and rec.get("config_hash") != config_hash:
        return None
    return rec


# ------------------------------------------------------------------- the config


def trusted_spec(path: Path, spec=None):
    """``(spec, problem)``: the sweep the cube was written for, from its stored hash (the
    ``_marshall`` attributes): the root ``config`` if it hashes to it, else the record's
    copy of the root ``config``, else ``_marshall``'s canonical config; ``problem``
    says that the root ``config`` was edited (``None`` if not)."""
    from ..config import ConfigError, parse_config
    from .cube import state

    path = Path(path)
    st = state(path) or {}
    want = st.get("config_hash")
    if spec is not None and (want is None or spec.config_hash == want):
        return spec, None
    texts = []
    root = _doc(path / "zarr.json") or {}
    texts.append(root.get("attributes", {}).get("config"))
    rec = read_record(path, want)
    if rec is not None:
        texts.append(((rec["nodes"].get("") or {}).get("attributes") or {}).get("config"))
    texts.append(st.get("config_canonical"))
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            continue
        try:
            sp = parse_config(text, output=path)
        except ConfigError:
            continue
        if sp.config_hash == want:
            return sp, (None if i == 0 else "root attribute config differs from the config "
                        "the cube was written with (its hash is stored in _marshall)")  # fmt: skip
    raise StoreError(
        f"{path}: no config that hashes to the stored {want} (the root attribute config "
        "and the run state disagree, and neither holds the other); the cube cannot be "
        "checked against what it was written for"
    )


def _config_of(text, config_hash: str) -> bool:
    """Whether ``text`` is a config of the sweep of ``config_hash``."""
    from ..config import ConfigError, parse_config

    if not isinstance(text, str):
        return False
    try:
        return parse_config(text).config_hash == config_hash
    except ConfigError:
        return False


# ------------------------------------------------------------------------ check


def coordinate_values(spec, rel: str) -> np.ndarray | None:
    """The values the config gives the coordinate-like array ``rel`` (``None``: not one
    the config defines)."""
    from .schema import template

    parts = rel.split("/")
    name = parts[-1]
    if spec.refine is None:
        if len(parts) != 1:
            return None
        ds = template(spec)
        return np.asarray(ds[name].values) if name in ds.variables else None
    from ..grid import level_spec

    if len(parts) != 3 or parts[0] != "levels" or not parts[1].isdigit():
        return None
    level, g = int(parts[1]), spec.refine.grid
    finest = template(level_spec(spec, g.levels))
    if name in g.names:
        if level == 0:
            return np.asarray(finest[name].values[g.finest_slices(0)[g.names.index(name)]])
        return np.asarray(g.coords(level)[name])
    return np.asarray(finest[name].values) if name in finest.variables else None


def _diff(want: dict, got: dict) -> str:
    keys = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k) and
                  k != "attributes")  # fmt: skip
    wa, ga = want.get("attributes") or {}, got.get("attributes") or {}
    attrs = sorted(k for k in set(wa) | set(ga) if wa.get(k) != ga.get(k))
    out = []
    if attrs:
        out.append("attributes " + ", ".join(attrs))
    if keys:
        out.append("metadata " + ", ".join(keys))
    return " and ".join(out) or "content"


def _name(rel: str) -> str:
    return rel or "the root group"


def check(path: Path, spec) -> tuple[list[str], dict]:
    """``(problems, plan)``: what differs from the record (see the module docstring) and
    what :func:`restore` would write: ``{"nodes": [...], "values": [...],
    "consolidate": bool}``."""
    path = Path(path)
    problems: list[str] = []
    fix: dict = {"nodes": [], "values": [], "consolidate": False, "config": False}
    spec, edited = trusted_spec(path, spec)
    text = ((_doc(path / "zarr.json") or {}).get("attributes") or {}).get("config")
    if not edited and not _config_of(text, spec.config_hash):
        edited = "root attribute config differs from the config the cube was written with"
    if edited:
        problems.append(edited)
        fix["config"] = True
    found = nodes(path)
    rec = read_record(path, spec.config_hash)
    cons = _consolidated(path)
    if rec is None:
        if record_path(path).exists():
            problems.append(f"{STATE}/{RECORD} (the record of the cube's metadata) is damaged; "
                            "attributes and array metadata cannot be checked")  # fmt: skip
        for rel, doc in (cons or {}).items():  # an old cube: consolidated copies restore
            if rel not in found and isinstance(doc, dict) and rel.split("/")[0] != STATE:
                problems.append(f"{_name(rel)}: zarr.json missing (its consolidated copy "
                                "remains)")  # fmt: skip
                fix["nodes"].append(rel)
        want_nodes = {}
    else:
        want_nodes = rec["nodes"]
    for rel, want in want_nodes.items():
        got = found.get(rel)
        if rel not in found:
            problems.append(f"{_name(rel)}: zarr.json missing")
            fix["nodes"].append(rel)
        elif got != want:
            if rel == "" and fix["config"] and _diff(want, got or {}) == "attributes config":
                pass  # said above
            else:
                problems.append(f"{_name(rel)}: {_diff(want or {}, got or {})} differ from "
                                "what was written")  # fmt: skip
            fix["nodes"].append(rel)
        if cons is not None and rel:
            c = dict(cons.get(rel) or {})
            c.pop("consolidated_metadata", None)
            if c != want:
                what = _diff(want or {}, c)
                problems.append(f"{_name(rel)}: the root's consolidated copy of its metadata "
                                f"({what}) differs from what was written")  # fmt: skip
                fix["consolidate"] = True
    # values: against the record, or (no record) against the config
    data = _data_names(spec)
    have = values(path, spec, {r: d for r, d in found.items() if _is_value_node(r, d, data)})
    for rel in sorted(set(have) | set((rec or {}).get("values", {}))):
        got = have.get(rel)
        if rec is not None:
            want_d = rec["values"].get(rel)
        else:
            v = coordinate_values(spec, rel)
            want_d = None if v is None else _digest_values(v)
            if want_d is None:
                continue
        if got != want_d:
            what = "unreadable" if got is None and rel in have else "different from the config's"
            problems.append(f"coordinate {_name(rel)}: values {what}")
            fix["values"].append(rel)
    if fix["nodes"] or fix["values"] or fix["config"]:
        fix["consolidate"] = fix["consolidate"] or cons is not None
    fix["spec"] = spec
    return problems, fix


# ---------------------------------------------------------------------- restore


def restore(path: Path, fix: dict) -> list[str]:
    """Write back what :func:`check` found changed; returns what could not be restored
    (an empty list: everything was)."""
    import zarr

    from .cube import _atomic_write

    path = Path(path)
    spec = fix["spec"]
    rec = read_record(path, spec.config_hash)
    cons = _consolidated(path) or {}
    cannot: list[str] = []
    for rel in fix["nodes"]:
        doc = (rec or {}).get("nodes", {}).get(rel) if rec is not None else cons.get(rel)
        if not isinstance(doc, dict):
            cannot.append(f"{_name(rel)}: no record of its metadata")
            continue
        f = path / rel / "zarr.json"
        if rel == "":
            full = _full(f) or {}
            if "consolidated_metadata" in full:
                doc = dict(doc) | {"consolidated_metadata": full["consolidated_metadata"]}
        f.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(f, json.dumps(doc, indent=2))
    if fix.get("config") and "" not in fix["nodes"]:
        root = zarr.open_group(path, mode="r+")
        root.attrs["config"] = spec.text
    for rel in fix["values"]:
        v = coordinate_values(spec, rel)
        want = (rec or {}).get("values", {}).get(rel)
        if v is None or (want is not None and _digest_values(v) != want):
            cannot.append(f"coordinate {_name(rel)}: the config does not give the values "
                          "written")  # fmt: skip
            continue
        arr = zarr.open_array(path / rel, mode="r+")
        arr[...] = v
    if fix["consolidate"]:
        consolidate(path, spec)
    return cannot


def consolidate(path: Path, spec=None) -> None:
    """Consolidate the root's metadata, refusing to leave out an array the record (or,
    without one, the schema) names: its ``zarr.json`` must be restored first."""
    import zarr

    path = Path(path)
    found = nodes(path)
    rec = read_record(path, None if spec is None else spec.config_hash)
    need = set((rec or {}).get("nodes", {}))
    if spec is not None and rec is None and spec.refine is None:
        from .schema import schema

        need |= set(schema(spec))
    lost = sorted(n for n in need if n not in found)
    if lost:
        raise StoreError(
            f"{path}: {', '.join(lost[:5])}: zarr.json missing; consolidating now would drop "
            f"them from the cube. Run `marshall verify {path} --repair`."
        )
    with warnings.catch_warnings():  # "consolidated metadata is not part of zarr v3 (yet)"
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(path)
