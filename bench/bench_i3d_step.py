"""Benchmark the full I3D train step: median wall time, XLA-counted FLOPs, and on an accelerator the MFU.

    .venv/bin/python bench/bench_i3d_step.py [--batch 2] [--steps 3] [--write-results]          # CPU, float32
    PYTHONPATH=. python3 bench/bench_i3d_step.py --platform gpu --dtype bfloat16 --batch 16 --steps 10  # device tool

The step is ``kinetics_assets.benchmark.train.jit_train_step`` on the full model (700 classes, width 1, 32x224x224
uint8 clips, SGD with momentum and weight decay, BatchNorm statistics updated), the one training runs. FLOPs are
XLA's own count for the compiled step (``lower(...).compile().cost_analysis()["flops"]``: forward, backward and
optimizer, 2 per multiply-add), not a formula. MFU = FLOPs / median step time / the chip's dense peak for the
dtype (``--peak-tflops``, else a table of data-sheet dense peaks; the H200 machine's own bf16 matmul reached about
790 of its 989 TFLOP/s, so 35 % MFU of 989 is about 44 % of what the chip delivers). The batch is random bytes, already on the device: this
measures the step, not the input pipeline. With ``--dtype bfloat16`` activations and convolutions run in bf16,
parameters, BatchNorm statistics and the optimizer stay float32. The loss column only shows the steps ran finite
(lr 0.5 on a tiny batch of noise is expected to blow it up).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## I3D train step"
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "TPU v4": 275.0, "TPU v5p": 459.0,
                    "TPU v5 lite": 197.0, "TPU v6 lite": 918.0}  # dense, per chip, vendors' data sheets


def xla_flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis["flops"])


def peak_tflops(device_kind: str, given: float | None) -> float | None:
    if given:
        return given
    return next((peak for name, peak in PEAK_BF16_TFLOPS.items() if name.lower() in device_kind.lower()), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="cpu", help="cpu, gpu or tpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch", type=int, default=2, help="clips per device")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the chip's dense peak for --dtype")
    parser.add_argument("--write-results", action="store_true", help=f"append to {RESULTS.name} ({SECTION})")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_platforms", args.platform)
    from kinetics_assets.benchmark import configs
    from kinetics_assets.benchmark.train import create_train_state, data_mesh, jit_train_step, to_global

    if args.write_results:  # the sandbox's imports (PyAV ...) are not on accelerator images
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_sandbox import machine_info

        info = machine_info()
    config = dataclasses.replace(configs.full(), per_device_batch=args.batch, frames=args.frames,
                                 resolution=args.resolution, compute_dtype=args.dtype)
    mesh = data_mesh()
    devices = jax.device_count()
    state = create_train_state(config, mesh)
    rng = np.random.default_rng(0)
    shape = (config.global_batch(), config.frames, config.resolution, config.resolution, 3)
    batch = {"video": to_global(rng.integers(0, 256, shape, np.uint8), mesh),
             "label": to_global(rng.integers(0, config.num_classes, shape[0]).astype(np.int32), mesh)}
    step = jit_train_step(mesh)
    rate = np.float32(config.base_learning_rate)
    start = time.perf_counter()
    compiled = step.lower(state, batch, rate).compile()
    compile_s = time.perf_counter() - start
    flops = xla_flops(compiled)
    state, metrics = compiled(state, batch, rate)  # warm-up
    jax.block_until_ready(metrics)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        state, metrics = compiled(state, batch, rate)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    kind = jax.devices()[0].device_kind
    peak = peak_tflops(kind, args.peak_tflops) if args.platform != "cpu" else None
    mfu = f"{flops / median / (peak * 1e12 * devices):.1%}" if peak else "n/a (no peak for a CPU)"
    row = (f"| {kind} x{devices} | {args.dtype} | {config.global_batch()} x {config.frames}x{config.resolution}² | "
           f"{median:.3f} s (of {len(times)}: {', '.join(f'{t:.3f}' for t in times)}) | {flops / 1e12:.3f} | "
           f"{flops / median / 1e12:.3f} | {mfu} | {compile_s:.0f} s | {float(metrics['loss']):.3g} |")
    print(row, flush=True)
    if args.write_results:
        command = " ".join(["bench/bench_i3d_step.py", *sys.argv[1:]])
        text = "\n".join([
            "", SECTION, "", f"`{command}` ({time.strftime('%Y-%m-%d')}; {info}; JAX {jax.__version__}).", "",
            "| device | dtype | global batch x clip | median step | XLA TFLOP/step | TFLOP/s | MFU | compile | loss (finite?) |",
            "|---|---|---|---|---|---|---|---|---|", row, ""])
        RESULTS.write_text(RESULTS.read_text(encoding="utf-8").rstrip("\n") + "\n" + text, encoding="utf-8")


if __name__ == "__main__":
    main()
