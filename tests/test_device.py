"""Where kernels run (issue 24): the device choice, its checks, launch sizes by device,
and, where a GPU is present, the GPU's results against the CPU's.

This process computes on the CPU (conftest sets ``JAX_PLATFORMS=cpu``); choices that
start JAX differently run in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline import device, kernels

ROOT = Path(__file__).resolve().parents[1]
ENV_KEYS = ("MARSHALL_DEVICE", "MARSHALL_JAX_PLATFORMS", "JAX_PLATFORMS")


def py(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; ``env`` on top of this one's without the
    device settings (a value None: unset)."""
    e = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    e.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def gpu_present() -> bool:
    res = py("import jax; print(jax.default_backend())")
    return res.returncode == 0 and device.kind_of(res.stdout.split()[-1]) == "gpu"


@pytest.fixture(scope="module")
def has_gpu() -> bool:
    return gpu_present()


# ------------------------------------------------------------------ the choice


@pytest.mark.parametrize(
    ("arg", "env", "want"),
    [
        (None, None, None),  # JAX's default backend
        (None, "gpu", "gpu"),
        (None, " CPU ", "cpu"),
        (None, "auto", None),
        ("cpu", "gpu", "cpu"),  # --device wins over the environment
        ("gpu", None, "gpu"),
        ("auto", "gpu", None),
    ],
)
def test_requested_device(monkeypatch, arg, env, want):
    monkeypatch.delenv(device.ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(device.ENV, env)
    assert device.requested(arg) == want


@pytest.mark.parametrize(("arg", "env"), [("tpu", None), (None, "cuda")])
def test_an_unknown_device_is_refused(monkeypatch, arg, env):
    monkeypatch.delenv(device.ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(device.ENV, env)
    with pytest.raises(device.DeviceError, match="cpu, gpu or auto"):
        device.requested(arg)


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({}, None),  # JAX_PLATFORMS unset: JAX's default
        ({"MARSHALL_DEVICE": "gpu"}, "cuda"),
        ({"MARSHALL_DEVICE": "cpu", "JAX_PLATFORMS": "cuda"}, "cpu"),
        ({"MARSHALL_JAX_PLATFORMS": "cpu"}, "cpu"),  # the older setting still works
        ({"MARSHALL_JAX_PLATFORMS": "cpu", "JAX_PLATFORMS": "cuda"}, None),  # JAX's own wins
    ],
)
def test_jax_platforms_from_the_environment(monkeypatch, env, want):
    for k in ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert device.environ_platforms() == want


DESCRIBE = """
from pipeline import device
d = device.setup({arg!r})
import jax, os
print(d.kind, device.kind_of(jax.default_backend()), d.chosen, os.environ.get("MARSHALL_DEVICE"))
"""


def test_by_default_kernels_run_on_jax_default_backend():
    res = py(DESCRIBE.format(arg=None))
    assert res.returncode == 0, res.stderr[-2000:]
    kind, backend, chosen, env = res.stdout.split()
    assert kind == backend and chosen == "None" and env == "None"


def test_the_cpu_when_asked_for(has_gpu):
    for arg, env, chosen in ((None, "cpu", "MARSHALL_DEVICE"), ("cpu", "gpu", "--device")):
        res = py(DESCRIBE.format(arg=arg), MARSHALL_DEVICE=env)
        assert res.returncode == 0, res.stderr[-2000:]
        # the choice is passed on to the processes this one starts (dask workers)
        assert res.stdout.split() == ["cpu", "cpu", chosen, "cpu"]


def test_a_gpu_where_there_is_none_names_the_fix(has_gpu, tmp_path):
    if has_gpu:
        pytest.skip("a GPU is present: asking for it is no error here")
    res = py(DESCRIBE.format(arg="gpu"))
    assert res.returncode != 0
    assert "DeviceError: a GPU was asked for but JAX has none" in res.stderr
    assert "pip install -e '.[gpu]'" in res.stderr and "--device cpu" in res.stderr
    # the command line says so before anything is written
    cfg = ROOT / "configs" / "smoke.yaml"
    out = tmp_path / "c.zarr"
    e = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    cli = str(Path(sys.executable).with_name("marshall"))
    r = subprocess.run([cli, "run", str(cfg), "-o", str(out), "--device", "gpu"], env=e,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 1
    assert "a GPU was asked for" in " ".join(r.stderr.split()), r.stderr
    assert not out.exists()


# ------------------------------------------------------------------ float64


def test_float64_check_of_a_fake_backend():
    device.require_float64(np.float64, 1.0 + 2.0**-40, "fake")
    with pytest.raises(device.DeviceError, match="computes in float32 on fake"):
        device.require_float64(np.float32, 1.0, "fake")
    with pytest.raises(device.DeviceError, match="float64 on every device"):
        device.require_float64(np.float64, 1.0, "fake")  # float64 in name, float32 in fact


def test_float32_is_refused():
    """x64 forced off after pipeline turned it on: every process that computes blocks
    checks first (``_jax.check_x64``, called by ``run.pipelined``) and refuses."""
    res = py("""
        import jax
        from pipeline import _jax
        _jax.check_x64()  # float64 on: fine
        jax.config.update("jax_enable_x64", False)
        _jax.check_x64()
    """)
    assert res.returncode != 0
    assert "DeviceError: JAX computes in float32" in res.stderr, res.stderr[-2000:]


def test_this_device_computes_in_float64():
    d = device.current()
    assert d.kind == "cpu" and "float64" in d.text()


# ------------------------------------------------------------------ launch sizes


def test_launch_sizes_by_device_kind():
    # the CPU's are the models' own (results there unchanged, bit for bit)
    assert kernels.launch_size("coordination", "cpu") == 1 << 16
    assert kernels.launch_size("standard", "cpu") == 1 << 16
    assert kernels.launch_size("dynamic", "cpu") is None  # a whole block a call
    assert kernels.launch_size("coordination", "gpu") == kernels.GPU_POINTS >= 1 << 20
    assert kernels.launch_size("coordination", "gpu", J=2) == kernels.GPU_POINTS
    assert kernels.launch_size("coordination", "gpu", J=4) == kernels.GPU_POINTS // 2
    assert kernels.launch_size("dynamic", "gpu") == kernels.GPU_TRAJECTORIES >= 1 << 14
    assert kernels.launch_size("coordination") == 1 << 16  # this process: the CPU
    assert kernels.slicing("coordination", 144_600, "cpu") == (3, 48_200)
    assert kernels.slicing("coordination", 144_600, "gpu") == (1, 144_600)
    assert kernels.in_flight("coordination", "cpu") == 1
    assert kernels.in_flight("dynamic", "cpu") == (os.cpu_count() or 1)
    assert kernels.in_flight("dynamic", "gpu") == kernels.GPU_IN_FLIGHT


CFG = """
model: coordination
sectors: 2
params:
  r_1: {{logspace: [0.25, 8.0, 61]}}
  r_2: 1.0
  theta_1: {{linspace: [1.05, 6.0, 37]}}
  theta_2: [1.5, 2.0, 3.0]
chunks: {{r_1: 8, theta_1: 16}}
output: {out}
"""


def test_gpu_sized_launches_give_the_cube_of_cpu_sized_ones(tmp_path, monkeypatch):
    """The GPU's code path (several blocks a launch, two launches in flight), run on
    the CPU: the same cube as the CPU's path, every output, every point."""
    from pipeline import open_cube, parse_config, run

    cpu = parse_config(CFG.format(out=tmp_path / "cpu.zarr"))
    run(cpu)
    monkeypatch.setattr(kernels, "device_kind", lambda: "gpu")
    bp = 8 * 16 * 3
    monkeypatch.setattr(kernels, "GPU_POINTS", 5 * bp)  # 5 blocks a launch
    gpu = parse_config(CFG.format(out=tmp_path / "gpu.zarr"))
    assert kernels.blocks_per_launch(gpu) == 5 and kernels.in_flight("coordination") == 2
    before = kernels.trace_count("coordination")
    res = run(gpu)
    assert res["computed"] == res["blocks"] == 24  # 5 launches, the last padded to 5 blocks
    assert kernels.trace_count("coordination") == before + 1  # one shape, one compile
    a, b = open_cube(cpu.output), open_cube(gpu.output)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# ------------------------------------------------------------------ on a GPU

COMPARE = """
import sys, numpy as np
from pipeline import device
from pipeline.kernels import run_kernel
sys.path.insert(0, "benchmarks")
from bench_device import dynamic_inputs, static_inputs
d = device.setup()
out = {}
for J in (2, 4):
    for k, v in run_kernel("coordination", J, static_inputs(200_000, J, seed=J)).items():
        out[f"static{J}/{k}"] = v
dyn = run_kernel("dynamic", 2, dynamic_inputs(2048, seed=1), T=100.0, n_time=201,
                 save_paths=True)
out.update({f"dynamic/{k}": v for k, v in dyn.items()})
np.savez(sys.argv[1], kind=d.kind, **out)
"""


def test_gpu_results_agree_with_the_cpu(has_gpu, tmp_path):
    """Static outputs exactly off the knife-edge band (the ``knife_edge`` points are
    decided by rounding, on any two machines); dynamic outputs to 1e-8 relative."""
    if not has_gpu:
        pytest.skip("no GPU here (JAX's default backend is the CPU): nothing to compare")
    res = {}
    for kind in ("cpu", "gpu"):
        f = tmp_path / f"{kind}.npz"
        e = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
        r = subprocess.run([sys.executable, "-c", COMPARE, str(f)], cwd=ROOT, capture_output=True,
                           text=True, timeout=600, env={**e, "MARSHALL_DEVICE": kind})  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        res[kind] = dict(np.load(f))
        assert str(res[kind].pop("kind")) == kind
    assert_agree(res["cpu"], res["gpu"])


def assert_agree(c: dict, g: dict) -> None:
    """``g`` (the GPU's outputs, ``COMPARE``'s names) is ``c`` (the CPU's) within the
    documented tolerances."""
    from pipeline.models.dynamic import PATH_KNIFE

    assert c.keys() == g.keys()

    def apart(wage):
        """Points whose finite wages are equal or 1e-9 (relative) apart: an order
        (ranks, best, worst) of wages closer than that is rounding's."""
        w = np.sort(np.where(np.isfinite(wage), wage, np.inf), axis=1)
        with np.errstate(invalid="ignore"):  # inf - inf: no second wage
            gap = np.abs(np.diff(w, axis=1)) / np.maximum(np.abs(w[:, 1:]), 1e-300)
        return np.all((gap == 0) | (gap > 1e-9) | ~np.isfinite(gap), axis=1)

    for pre in ("static2/", "static4/", "dynamic/"):
        off = ~(c[pre + "knife_edge"] | g[pre + "knife_edge"])
        if pre == "dynamic/":  # and off a knife-edge path
            off &= ~np.any((c[pre + "status"] | g[pre + "status"]) & PATH_KNIFE, axis=1)
        assert off.mean() > 0.8, pre
        ordered = off & apart(c[pre + "wage"])
        for k in [k for k in c if k.startswith(pre)]:
            m = ordered if k.endswith(("wage_rank", "best", "worst")) else off
            if c[k].dtype.kind == "f":  # static: rounding; dynamic: 1e-8 documented
                rtol = 1e-8 if pre == "dynamic/" else 1e-12
                np.testing.assert_allclose(g[k][m], c[k][m], rtol=rtol, atol=0, equal_nan=True,
                                           err_msg=k)  # fmt: skip
            else:
                np.testing.assert_array_equal(g[k][m], c[k][m], err_msg=k)


# ------------------------------------------------------------------ the benchmark


def test_device_benchmark_runs_quick():
    """``benchmarks/bench_device.py --quick`` with tiny sizes prints its table."""
    r = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_device.py",
            "--quick",
            "--static-sizes",
            "256",
            "--no-dynamic",
            "--e2e-n",
            "3000",
            "--repeats",
            "1",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # fmt: skip
    )
    assert r.returncode == 0, r.stderr[-3000:]
    table = [ln for ln in r.stdout.splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| what | device | per launch")
    assert any(ln.startswith("| static coordination J=2 | cpu | 256 |") for ln in table)
    assert any(ln.startswith("| end to end, coordination J=2 | cpu |") for ln in table)


def test_kernels_import_with_only_jax_and_numpy():
    """The benchmark's kernel part where xarray, zarr, dask, pydantic and yaml are
    missing (each import of them fails)."""
    code = """
        import sys
        for m in ("xarray", "zarr", "dask", "pydantic", "yaml", "pandas"):
            sys.modules[m] = None
        sys.path.insert(0, "benchmarks")
        import bench_device
        bench_device.main(["--quick", "--static-sizes", "128", "--no-dynamic", "--repeats", "1"])
        assert "xarray" not in [m for m in sys.modules if sys.modules[m] is not None]
    """
    r = py(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| static coordination J=2 | cpu | 128 |" in r.stdout
    assert "skipped: needs xarray" in r.stdout


# ------------------------------------------------------------------ workers


def test_workers_choose_the_same_way(monkeypatch):
    """A LocalCluster's workers get this process's choice (none: JAX's default, a GPU
    where there is one, shared without preallocating it); SLURM jobs export it."""
    from pipeline.cluster import _device_exports
    from pipeline.run import _device_env

    for k in ENV_KEYS:  # set first, so that monkeypatch restores what use() sets
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    assert _device_env() == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert _device_exports(None) == []
    assert _device_exports("gpu") == ["export MARSHALL_DEVICE=gpu"]
    device.use("cpu")  # what `marshall run --device cpu` does in the driver
    assert _device_env()["MARSHALL_DEVICE"] == "cpu" and _device_env()["JAX_PLATFORMS"] == "cpu"
    assert _device_exports(None) == ["export MARSHALL_DEVICE=cpu"]


def test_the_test_process_still_computes_on_the_cpu():
    """(after the test above: the environment it changed is restored)"""
    assert os.environ.get("JAX_PLATFORMS") == "cpu" and device.ENV not in os.environ


def test_plan_and_run_say_where_and_how_many_points_a_launch(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.setenv(device.ENV, "")  # restored after --device sets it

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG.format(out=tmp_path / "c.zarr"))
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["plan", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "device           cpu (cpu; chosen by JAX_PLATFORMS; float64); 384 points" in r.output
    r = CliRunner().invoke(app, ["plan", str(cfg), "--json", "--device", "cpu"])
    assert json.loads(r.output) | {"device": "cpu", "launch_points": 384} == json.loads(r.output)
    r = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["run", str(cfg), "--no-progress", "--device", "cpu"]
    )
    assert r.exit_code == 0 and "chosen by --device; float64); 384 points per launch" in r.output
