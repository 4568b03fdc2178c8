"""``marshall explore`` on a 10^8-point cube, measured in the browser.

Run: ``.venv/bin/python benchmarks/bench_explore.py [--points 1e8] [--cube PATH] [--moves 12]``

1. builds the cube with a real sweep (model ``coordination``, J = 2, four swept
   parameters of ``points**0.25`` values each: ~20 s for 10^8 points on 2 cores), or
   uses ``--cube``;
2. starts ``python -m pipeline.explore CUBE --port 0`` and times it until it prints
   its address ("server start");
3. opens the page in headless Chromium (Playwright, Debian's ``/usr/bin/chromium``)
   and times it from the address to the phase diagram drawn and idle ("page ready",
   the target: < 2 s), also as the browser's own clock from navigation start;
4. moves a slider one step (keyboard, as a person would), ``--moves`` times, and times
   each move in the browser (``performance.now()``) from the key press to the new
   cells in the figure's data source and two animation frames later (painted) (the
   target: < 300 ms); then one step across a chunk boundary (a new slab is read) and a
   switch of the x axis.

Prints a table; the numbers go into benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

READY_JS = (
    "() => window.Bokeh && Bokeh.documents.length > 0 && "
    "Bokeh.documents[0].get_model_by_name('phase-holder') != null && "
    "Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name('phase-holder')"
    ".children[0]) != null && [...Bokeh.index].every(v => v.is_idle ?? true)"
)
# arm: remember the shown figure's data and the time; done: new data, then 2 frames
ARM_JS = (
    "() => { const f = Bokeh.documents[0].get_model_by_name('phase-holder').children[0];"
    " window.__old = f.renderers[0].data_source.data; window.__fig = f.name;"
    " window.__t0 = performance.now() }"
)
CHANGED_JS = (
    "() => { const f = Bokeh.documents[0].get_model_by_name('phase-holder').children[0];"
    " return f.name != window.__fig || f.renderers[0].data_source.data !== window.__old }"
)
PAINTED_JS = (
    "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame("
    "() => r(performance.now() - window.__t0))))"
)


def build(points: float, out: Path) -> float:
    side = round(points**0.25)
    cfg = out.with_suffix(".yaml")
    from bench_static import config_text  # the same 4-D coordination sweep

    cfg.write_text(config_text(side**4, out))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--workers", "0", "-q"],
        check=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=float, default=1e8)
    ap.add_argument("--cube", type=Path, default=None, help="an existing cube")
    ap.add_argument("--moves", type=int, default=12)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-explore-"))
    cube = args.cube
    if cube is None:
        cube = tmp / "cube.zarr"
        print(f"sweeping {args.points:.0e} points ... ", end="", flush=True)
        print(f"{build(args.points, cube):.1f} s")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.explore", str(cube), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    url = None
    for line in proc.stdout:
        m = re.search(r"at (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    t_addr = time.perf_counter()
    if url is None:
        raise SystemExit("the server did not start")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp / "profile"),
                executable_path="/usr/bin/chromium",
                args=FLAGS,
                headless=True,
                viewport={"width": 1500, "height": 1300},
            )
            page = ctx.new_page()
            errors = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            t_nav = time.perf_counter()
            page.goto(url)
            page.wait_for_function(READY_JS, timeout=60_000, polling="raf")
            t_ready = time.perf_counter()
            browser_ready = page.evaluate("() => performance.now()")
            page.wait_for_timeout(500)

            def timed(action) -> float:
                page.evaluate(ARM_JS)
                action()
                page.wait_for_function(CHANGED_JS, timeout=30_000, polling="raf")
                return float(page.evaluate(PAINTED_JS))

            handle = page.evaluate_handle(
                "() => { const m = Bokeh.documents[0].get_model_by_name('slider:theta_2'); "
                "return Bokeh.index.find_one(m).shadow_el.querySelector('.noUi-handle') }"
            ).as_element()
            moves = []
            for i in range(args.moves):
                handle.focus()
                key = "ArrowRight" if (i // 4) % 2 == 0 else "ArrowLeft"
                moves.append(timed(lambda key=key: page.keyboard.press(key)))
                page.wait_for_timeout(150)
            # from the first index of a chunk one step down: a new chunk block is read
            start = page.evaluate(
                "() => Bokeh.documents[0].get_model_by_name('slider:theta_2').value"
            )
            handle.focus()
            crossing = timed(lambda: page.keyboard.press("ArrowLeft"))
            page.wait_for_timeout(150)
            sel = page.evaluate_handle(
                "() => { const m = Bokeh.documents[0].get_model_by_name('xsel'); "
                "return Bokeh.index.find_one(m).shadow_el.querySelector('select') }"
            ).as_element()
            label = page.evaluate(
                "() => Bokeh.documents[0].get_model_by_name('xsel').options"
                ".find(o => o[0] == 'theta_1')[1]"
            )
            axes = timed(lambda: sel.select_option(label=label))
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"cube: {cube}")
    print(f"server start (launch -> address printed): {t_addr - t0:.2f} s")
    print(
        f"page ready (address -> phase diagram drawn and idle): {t_ready - t_nav:.2f} s "
        f"(browser clock from navigation start: {browser_ready / 1000:.2f} s)"
    )
    print(
        f"slider move, {len(moves)} single steps: median {statistics.median(moves):.0f} ms, "
        f"min {min(moves):.0f}, max {max(moves):.0f} ms; all: "
        + ", ".join(f"{m:.0f}" for m in moves)
    )
    print(
        f"slider step out of the cached chunk block (theta_2 index {start} -> {start - 1}, "
        f"reads the next slab): {crossing:.0f} ms"
    )
    print(f"x axis switch (new figure, new slice): {axes:.0f} ms")
    print(f"console errors: {errors or 'none'}")


if __name__ == "__main__":
    main()
