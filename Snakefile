# marshall workflow: every config in configs/ -> a zarr cube (+ figures and a report).
#
#   python scripts/workflow.py --cores 2 --snakefile Snakefile   # what `make demo` runs:
#       snakemake --rerun-incomplete, after `snakemake --unlock` when a killed run left
#       its lock and no Snakemake runs on the directory
#   snakemake --cores 2 --rerun-incomplete   # by hand, after a kill: unfinished blocks only
#
# Rules are thin: they call the `marshall` CLI. The zarr store is never a rule
# output (Snakemake deletes outputs before re-running a job, and a directory()
# output when the job fails): a rule's output is a small flag written after the
# store is complete; completion inside the store is tracked per block.
import glob
import os
import shutil
import sys

from pipeline.config import load_config

CONFIGS = {os.path.splitext(os.path.basename(p))[0]: p for p in sorted(glob.glob("configs/*.yaml"))}
SPECS = {name: load_config(path) for name, path in CONFIGS.items()}  # one schema: validated here too
# the marshall installed beside the Python running Snakemake (the venv's), else PATH's
_here = os.path.join(os.path.dirname(sys.executable), "marshall")
MARSHALL = os.environ.get("MARSHALL") or (_here if os.path.exists(_here) else shutil.which("marshall"))
WORKERS = int(os.environ.get("MARSHALL_WORKERS", "0"))  # 0: in the job's process


# Every cube's standard figures (its model's declaration: `marshall models`) are drawn
# by one `marshall figures` job per cube: maps over the first two swept dimensions, the
# other swept ones at their first value; ppf and paths at the middle of every axis.


def explore_opts(name):
    """The explorer page of a cube: every swept dimension beyond the first two held at its
    first value, so the self-contained page holds one 2-D slice (`marshall explore`)."""
    swept = [a for a in SPECS[name].axes if len(a) > 1]
    return " ".join(f"--at {a.name}={a.values[0]:.17g}" for a in swept[2:])


EXPLORE = [n for n in CONFIGS if len([a for a in SPECS[n].axes if len(a) > 1]) >= 2]


rule all:
    input:
        expand("results/cubes/{name}.done", name=CONFIGS),
        expand("results/figures/{name}", name=CONFIGS),
        expand("results/explore/{name}.html", name=EXPLORE),
        "results/report.md",


PARTS = int(os.environ.get("MARSHALL_PARTS", "1"))  # jobs per config (cluster: many blocks each)

if PARTS <= 1:

    rule cube:
        """Compute (or resume) a config's cube; the flag holds `marshall verify`'s report."""
        input:
            config=lambda w: CONFIGS[w.name],
        output:
            flag="results/cubes/{name}.done",
        params:
            store=lambda w: str(SPECS[w.name].output),
        log:
            "logs/cube/{name}.log",
        shell:
            "({MARSHALL} run {input.config} --workers {WORKERS} --no-progress --overwrite "
            "&& {MARSHALL} verify {params.store} > {output.flag}) > {log} 2>&1"

else:

    rule cube_init:
        """Stage 1: the store's template, once."""
        input:
            config=lambda w: CONFIGS[w.name],
        output:
            flag="results/cubes/{name}.init",
        log:
            "logs/cube_init/{name}.log",
        shell:
            "{MARSHALL} init {input.config} --overwrite > {output.flag} 2> {log}"

    rule cube_part:
        """Stage 2: part I of N of the blocks (side by side, one cluster job each)."""
        input:
            config=lambda w: CONFIGS[w.name],
            init="results/cubes/{name}.init",
        output:
            flag="results/cubes/{name}.part{part}",
        log:
            "logs/cube_part/{name}.{part}.log",
        shell:
            "{MARSHALL} run {input.config} --part {wildcards.part}/" + str(PARTS) +
            " --workers {WORKERS} --no-progress --quiet > {log} 2>&1 && touch {output.flag}"

    rule cube:
        """Stage 3: name the regimes, consolidate, verify."""
        input:
            config=lambda w: CONFIGS[w.name],
            parts=lambda w: [f"results/cubes/{w.name}.part{i}" for i in range(1, PARTS + 1)],
        output:
            flag="results/cubes/{name}.done",
        params:
            store=lambda w: str(SPECS[w.name].output),
        log:
            "logs/cube/{name}.log",
        shell:
            "({MARSHALL} finalize {input.config} && {MARSHALL} verify {params.store} "
            "> {output.flag}) > {log} 2>&1"


rule figures:
    """Every standard figure of a config's cube, in one process (`marshall figures`)."""
    input:
        flag="results/cubes/{name}.done",
    output:
        directory("results/figures/{name}"),
    params:
        store=lambda w: str(SPECS[w.name].output),
    log:
        "logs/figures/{name}.log",
    shell:
        "{MARSHALL} figures {params.store} --dir {output} > {log} 2>&1"


rule explore:
    """A self-contained explorer page of a config's cube (`marshall explore --html`)."""
    input:
        flag="results/cubes/{name}.done",
    output:
        "results/explore/{name}.html",
    params:
        store=lambda w: str(SPECS[w.name].output),
        opts=lambda w: explore_opts(w.name),
    log:
        "logs/explore/{name}.log",
    shell:
        "{MARSHALL} explore {params.store} --html {output} {params.opts} > {log} 2>&1"


rule report:
    """results/report.md: every cube's regimes, claims and figures (`marshall report`)."""
    input:
        flags=expand("results/cubes/{name}.done", name=CONFIGS),
        figures=expand("results/figures/{name}", name=CONFIGS),
        pages=expand("results/explore/{name}.html", name=EXPLORE),
    output:
        "results/report.md",
    log:
        "logs/report/report.log",
    shell:
        "{MARSHALL} report results -o {output} > {log} 2>&1"
