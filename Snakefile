# marshall workflow: every config in configs/ -> a zarr cube (+ figures and a report).
#
#   snakemake --cores 2                 # what `make demo` runs
#   snakemake --cores 2 --rerun-incomplete   # after a kill: unfinished blocks only
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


rule all:
    input:
        expand("results/cubes/{name}.done", name=CONFIGS),


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
        "({MARSHALL} run {input.config} --workers {WORKERS} --no-progress "
        "&& {MARSHALL} verify {params.store} > {output.flag}) > {log} 2>&1"
