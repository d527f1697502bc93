"""What the I3D benchmark adds to `make demo`: its stage (`demo.benchmark`: shards, seven training and evaluation
runs, Table 4) re-run alone on a copy of a finished demo's KINETICS_HOME, as a fresh machine would run it — the
shards and checkpoints removed and JAX's persistent compilation cache empty, so the first partition compiles.

    .venv/bin/python bench/bench_benchmark_stage.py --home $KINETICS_HOME [--write-results]

The copy is a temporary folder (the demo's home stays as it was). Prints wall and CPU seconds per partition and in
all; `--write-results` replaces the "I3D stage of the demo" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info  # noqa: E402
from results_md import replace_section  # noqa: E402

SECTION = "## I3D stage of the demo"
TARGET_S = 240  # issue 13: "adds at most about 4 minutes to make demo on 2 cores"


def fresh_copy(home: Path, into: Path) -> Path:
    """The demo's home without what the stage makes: shards, checkpoints, the compilation cache."""
    copy = into / "home"
    shutil.copytree(home, copy, symlinks=True, ignore=shutil.ignore_patterns("jax"))
    shutil.rmtree(copy / "artifacts" / "benchmark", ignore_errors=True)
    return copy


def run_stage(home: Path) -> tuple[list[str], float, float, str]:
    """The demo's benchmark stage on `home`: its printed lines, wall and CPU seconds, and Table 4 (markdown)."""
    os.environ["KINETICS_HOME"], os.environ["DAGSTER_HOME"] = str(home), str(home / "dagster_home")
    import dagster as dg

    from kinetics_assets.definitions import defs
    from kinetics_assets.demo import benchmark, materialize_until_finished
    from kinetics_assets.materialized import latest

    lines: list[str] = []

    def echo(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with dg.DagsterInstance.get() as instance:
        def run(job: str, partition: str | None = None, **kwargs) -> None:
            materialize_until_finished(defs, instance, job, partition, echo=echo, **kwargs)

        wall, cpu = time.perf_counter(), time.process_time()
        benchmark(instance, echo, run)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return lines, wall, cpu, latest(instance, "benchmark_table")[0].to_markdown(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="KINETICS_HOME of a finished `kinetics demo`")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if not (args.home / "artifacts" / "releases" / "LATEST").is_file():
        raise SystemExit(f"{args.home}: no release there; run `kinetics demo` with KINETICS_HOME={args.home} first")
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-i3d-stage-") as scratch:
        lines, wall, cpu, table4 = run_stage(fresh_copy(args.home.resolve(), Path(scratch)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    verdict = "met" if wall <= TARGET_S else f"not met ({wall / TARGET_S:.2f}× the target)"
    summary = (f"stage: {wall:.0f} s wall, {cpu:.0f} s CPU (all threads), peak RSS {peak:.2f} GiB; "
               f"target ≤ {TARGET_S} s: {verdict}")
    print(summary)
    print(table4)
    if args.write_results:
        partitions = "\n".join(f"- {line.strip()}" for line in lines if "I3D trained on" in line)
        replace_section(SECTION, f"""{SECTION}

What the I3D benchmark adds to `make demo` (issue 13's target: at most about 4 minutes on 2 cores): the demo's
benchmark stage alone on a copy of a finished demo's home, shards, checkpoints and JAX's compilation cache removed
(a fresh machine: the first partition compiles the train and evaluation steps).

Machine: {info}

Command: `.venv/bin/python bench/bench_benchmark_stage.py --home $KINETICS_HOME --write-results`

Per partition (training, then evaluation on val and test; wall seconds as the demo prints them):
{partitions}

Result: {summary}.

Table 4 of this run (`benchmark_table`; percent, test_top1_low/high: bootstrap 95 % interval over the test videos):

{table4}
""")


if __name__ == "__main__":
    main()
