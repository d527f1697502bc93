"""Dagster wiring of the I3D benchmark (the note's Table 4 and Figure 1): the latest release's clips as shards,
one checkpoint and one evaluation per training-set size (examples per class: 100 … 600, all), the table.

JAX, Grain and the model load only when a benchmark asset runs: every other run of the code location skips them."""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from kinetics_assets.data_files import data_path
from kinetics_assets.metadata import figure_png, png_markdown, table
from kinetics_assets.partitions import EXAMPLES_PARTITIONS
from resources.accelerator import Accelerator
from resources.storage import LocalArtifactStore

GROUP = "benchmark"
EXAMPLES = tuple(EXAMPLES_PARTITIONS.get_partition_keys())
RELEASES, SHARDS, CHECKPOINTS = "releases", "benchmark/shards", "benchmark/checkpoints"


class BenchmarkSettings(dg.ConfigurableResource):
    """The benchmark's model and input configuration, and how a partition's examples per class scale (the
    sandbox's classes hold tens of clips, not hundreds: `examples_scale` maps 100 … 600 onto them)."""

    model: str = Field(default="full", description="I3D configuration: full (the note's) or tiny (CPU)")
    inputs: str = Field(default="production", description="frames/crop/short side: production or demo")
    examples_scale: float = Field(default=1.0, gt=0, description="training examples per class = key × scale")
    epochs: int | None = Field(default=None, description="epochs; None = the model configuration's")
    seed: int = 0
    compilation_cache: str | None = Field(default=None, description="folder of JAX's persistent compilation cache")

    def per_class(self, key: str) -> int | None:
        return None if key == "all" else max(1, round(int(key) * self.examples_scale))

    def run(self, shards: Path, workdir: Path, key: str):
        from kinetics_assets.benchmark.run import BenchmarkRun

        return BenchmarkRun(shards=str(shards), workdir=str(workdir), per_class=self.per_class(key),
                            model=self.model, inputs=self.inputs, epochs=self.epochs, seed=self.seed,
                            compilation_cache=self.compilation_cache)


def latest_release(artifacts: LocalArtifactStore) -> Path:
    releases = artifacts.path(RELEASES)
    pointer = releases / "LATEST"
    if not pointer.is_file():
        raise FileNotFoundError(f"no release under {releases}: materialize edition_release first")
    return releases / pointer.read_text().strip()


def _shards_of(artifacts: LocalArtifactStore, key: str):
    """The shards, and the store path of partition `key`'s checkpoints (beside those of the same shards)."""
    from kinetics_assets.benchmark.shards import open_shards

    shards = open_shards(artifacts.path(SHARDS))
    return shards, f"{CHECKPOINTS}/{shards.manifest['content_sha256'][:16]}/{key}"


@dg.asset(group_name=GROUP, deps=["edition_release"], kinds={"arrayrecord"})
def benchmark_shards(artifacts: LocalArtifactStore, benchmark: BenchmarkSettings) -> dg.MaterializeResult:
    """The latest release's clips decoded to frames (the configuration's rate and short side) in shards; rebuilt
    only when the release's content or the preprocessing changes."""
    from kinetics_assets.benchmark.run import INPUTS
    from kinetics_assets.benchmark.shards import build_shards

    release = latest_release(artifacts)
    with artifacts.folder(SHARDS) as root:  # a bucket's store uploads what changed when the block ends
        shards = build_shards(release, root, INPUTS[benchmark.inputs].shards)
    splits = shards.manifest["splits"]
    return dg.MaterializeResult(metadata={
        "release": release.name,
        "classes": len(shards.classes),
        **{f"{split}_clips": info["clips"] for split, info in splits.items()},
        "skipped": dg.MetadataValue.json({split: info["skipped"] for split, info in splits.items()}),
        "path": artifacts.link(shards.root),
    })


@dg.asset(group_name=GROUP, partitions_def=EXAMPLES_PARTITIONS, deps=["benchmark_shards"], kinds={"jax"})
def i3d_checkpoint(context: dg.AssetExecutionContext, artifacts: LocalArtifactStore, benchmark: BenchmarkSettings,
                   accelerator: Accelerator) -> dg.MaterializeResult:
    """I3D (RGB) trained from scratch on at most the partition's examples per class (nested subsets), where the
    `accelerator` resource runs it; resumes from the latest checkpoint."""
    shards, checkpoints = _shards_of(artifacts, context.partition_key)
    with artifacts.folder(checkpoints) as workdir:  # hosts writing to the bucket itself leave it nothing to upload
        return accelerator.train(context, benchmark.run(shards.root, workdir, context.partition_key))


@dg.asset(group_name=GROUP, partitions_def=EXAMPLES_PARTITIONS, deps=["i3d_checkpoint"], kinds={"jax", "pandas"})
def i3d_evaluation(context: dg.AssetExecutionContext, artifacts: LocalArtifactStore,
                   benchmark: BenchmarkSettings) -> dg.Output[pd.DataFrame]:
    """The partition's checkpoint on val and test: the input config's clips a video (the note's 8; 4 in the demo),
    softmax probabilities averaged; top-1 and top-5 with a bootstrap 95 % interval of top-1 over the videos (the
    sandbox's test split is small)."""
    from kinetics_assets.benchmark.run import run_evaluation

    shards, checkpoints = _shards_of(artifacts, context.partition_key)
    run = benchmark.run(shards.root, artifacts.path(checkpoints), context.partition_key)
    scores = run_evaluation(run).assign(examples=context.partition_key,
                                        per_class=run.per_class if run.per_class else "all")
    return dg.Output(scores, metadata={"examples_per_class": str(run.per_class or "all"), "scores": table(scores)})


def table4(evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per training-set size in EXAMPLES order: val and test top-1/top-5 and test's top-1 interval."""
    wide = evaluations.pivot(index="examples", columns="split", values=["top1", "top5", "top1_low", "top1_high"])
    wide.columns = [f"{split}_{metric}" for metric, split in wide.columns]
    order = [key for key in EXAMPLES if key in wide.index]
    wide = wide.loc[order].reset_index().rename(columns={"examples": "train_examples_per_class"})
    keep = ["train_examples_per_class", "val_top1", "val_top5", "test_top1", "test_top5", "test_top1_low",
            "test_top1_high"]
    return wide[[column for column in keep if column in wide.columns]].round(1)


def figure1(ours: pd.DataFrame, paper: pd.DataFrame) -> bytes:
    """Test top-1 against training examples per class: ours (with its interval) and the note's, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = range(len(ours))
    left.errorbar(x, ours["test_top1"], yerr=[ours["test_top1"] - ours["test_top1_low"],
                                              ours["test_top1_high"] - ours["test_top1"]], marker="o", capsize=3)
    left.set_xticks(list(x), ours["train_examples_per_class"])
    left.set_title("this pipeline (sandbox-scaled sizes)")
    left.set_xlabel("training examples per class (partition)")
    left.set_ylabel("test top-1 %")
    rows = paper[~paper["train_examples_per_class"].str.startswith("all (Kinetics-700)")]
    right.plot(range(len(rows)), rows["test_top1"], marker="o", color="grey")
    right.set_xticks(range(len(rows)), [label.split(" ")[0] for label in rows["train_examples_per_class"]])
    right.set_title("the note's Figure 1 (Kinetics-700-2020)")
    right.set_xlabel("training examples per class")
    return figure_png(figure)


@dg.asset(group_name=GROUP, kinds={"pandas"})
def benchmark_table(i3d_evaluation: pd.DataFrame, artifacts: LocalArtifactStore) -> dg.Output[pd.DataFrame]:
    """Table 4 (val/test top-1/top-5 per training-set size) and Figure 1, beside the note's numbers."""
    ours = table4(i3d_evaluation)
    paper = pd.read_csv(data_path("paper_table4_i3d.csv"), dtype={"train_examples_per_class": str})
    png = figure1(ours, paper)
    artifacts.write_bytes("benchmark/figure1.png", png)
    artifacts.write_csv("benchmark/table4.csv", ours)
    return dg.Output(ours, metadata={
        "table4": table(ours),
        "the_notes_table4": table(paper.assign(source="the note (Kinetics-700-2020, 700 classes)")),
        "figure1": png_markdown(png, "Figure 1: test top-1 against examples per class"),
        "files": artifacts.link(artifacts.path("benchmark")),
    })
