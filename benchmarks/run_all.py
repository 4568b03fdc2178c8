"""Run every benchmark in this folder (what `make bench` does), one after another.

Each prints its own table; numbers go into benchmarks/RESULTS.md by hand, with the
machine, versions and date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    rc = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n===== {script.name} =====", flush=True)
        rc |= subprocess.call([sys.executable, str(script), *sys.argv[1:]])
    sys.exit(rc)
