"""`make demo`'s command: Snakemake that recovers by itself from a killed run.

    python scripts/workflow.py [snakemake arguments]    # e.g. --cores 2 --snakefile Snakefile

A killed Snakemake leaves its lock (``.snakemake/locks``) and incomplete-job marks
behind, and the next `snakemake` exits with "Directory cannot be locked" until one runs
`snakemake --unlock` by hand. This script runs Snakemake with ``--rerun-incomplete`` and,
when the directory is locked, first looks for a live Snakemake on it (any process whose
command is ``snakemake`` or ``python -m snakemake`` and whose ``--directory`` or, without
one, working directory is this one): if there is one it refuses, naming it (never
unlock under a running workflow); if there is none the lock is stale and it runs
``snakemake --unlock`` (saying so) before the run. Where processes cannot be listed
(no /proc) it does not unlock and says how to. Exit status: Snakemake's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DIRECTORY = ("-d", "--directory")
# options whose value a --unlock run needs as well (which workflow, which directory)
KEEP = ("-s", "--snakefile", "-d", "--directory", "--configfile", "--configfiles")


def _option(args: list[str], names: tuple[str, ...]) -> str | None:
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "=") and n.startswith("--"):
                return a.split("=", 1)[1]
    return None


def workdir(args: list[str], cwd: str | Path) -> Path:
    """The working directory of a Snakemake run with ``args`` started in ``cwd``."""
    d = _option(args, DIRECTORY)
    return (Path(cwd) / d).resolve() if d else Path(cwd).resolve()


def _is_snakemake(argv: list[str]) -> int | None:
    """Where a command's own arguments start if it runs Snakemake, else None."""
    if argv and Path(argv[0]).name == "snakemake":
        return 1
    if len(argv) > 1 and Path(argv[0]).name.startswith("python"):
        if argv[1] == "-m" and len(argv) > 2 and argv[2] == "snakemake":
            return 3
        if Path(argv[1]).name == "snakemake":  # python .../bin/snakemake
            return 2
    return None


def live_snakemakes(directory: Path) -> list[int] | None:
    """Pids of running Snakemake processes working on ``directory`` (None: processes
    cannot be listed here)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    mine = {os.getpid(), os.getppid()}
    found = []
    for p in proc.iterdir():
        if not p.name.isdigit() or int(p.name) in mine:
            continue
        try:
            argv = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if argv and argv[-1] == "":
                argv.pop()
            start = _is_snakemake(argv)
            if start is None:
                continue
            cwd = os.readlink(p / "cwd")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if workdir(argv[start:], cwd) == directory:
            found.append(int(p.name))
    return found


def main(args: list[str]) -> int:
    bin_dir = Path(sys.executable).parent
    snakemake = str(bin_dir / "snakemake") if (bin_dir / "snakemake").exists() else "snakemake"
    directory = workdir(args, os.getcwd())
    locks = directory / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        live = live_snakemakes(directory)
        if live is None:
            print(f"workflow: {directory} is locked and running processes cannot be listed "
                  "here; if no Snakemake runs there, run `snakemake --unlock` and again",
                  file=sys.stderr)  # fmt: skip
        elif live:
            print(f"workflow: another Snakemake (pid {', '.join(map(str, live))}) is running in "
                  f"{directory}; wait for it to finish (or stop it) and run again",
                  file=sys.stderr)  # fmt: skip
            return 1
        else:
            print(f"workflow: removing the lock a killed Snakemake left in {directory} (no "
                  "Snakemake runs there); unfinished jobs run again", file=sys.stderr)  # fmt: skip
            keep = []
            for i, a in enumerate(args):
                if a in KEEP and i + 1 < len(args):
                    keep += [a, args[i + 1]]
                elif any(a.startswith(k + "=") for k in KEEP if k.startswith("--")):
                    keep.append(a)
            res = subprocess.run([snakemake, "--unlock", *keep], stdout=subprocess.DEVNULL)
            if res.returncode != 0:
                return res.returncode
    rerun = [] if "--rerun-incomplete" in args or "--ri" in args else ["--rerun-incomplete"]
    return subprocess.call([snakemake, *rerun, *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
