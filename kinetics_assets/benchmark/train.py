"""Data-parallel I3D training and 8-clip evaluation: pure jitted steps, an Orbax-checkpointed loop.

Every device holds a replica of the state; each global batch is split along its first axis over a 1-D ``data``
mesh of all devices (``NamedSharding``), so XLA inserts the gradient all-reduce and BatchNorm's batch statistics are
those of the whole global batch — one step is the same computation on 1 device as on N (up to summation order).
The loop takes batches from ``batches_iterator_factory(start_step)``, which must yield the same batch for the same
step every time: that, the step-derived dropout key and Orbax's atomic checkpoints make a run killed at any moment
and resumed end bitwise equal to an uninterrupted one on CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax.training import train_state
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kinetics_assets.benchmark import cpu_ops
from kinetics_assets.benchmark.configs import I3DConfig, learning_rate, optimizer, with_learning_rate
from kinetics_assets.benchmark.models import I3D, init_variables

Batch = Mapping[str, np.ndarray]  # {"video": uint8 or float [B, T, H, W, 3], "label": int [B]}
BatchesFactory = Callable[[int], Iterator[Batch]]  # start step -> the batches of steps start, start+1, ...
MetricsCallback = Callable[[int, dict[str, float]], None]  # (steps done, {"loss", "accuracy", "learning_rate"})


class TrainState(train_state.TrainState):
    """Parameters, optimizer state and step (Flax's TrainState), plus BatchNorm statistics and the dropout seed."""

    batch_stats: Any
    dropout_key: jax.Array  # raw uint32[2] key, checkpointed with the rest; each step folds its step number in


def maybe_initialize_distributed() -> None:
    """Join a multi-host job when the environment asks for one (``KINETICS_JAX_DISTRIBUTED=1``).

    ``jax.distributed.initialize`` then detects TPU pods, SLURM, Open MPI and Kubernetes itself, or takes
    ``JAX_COORDINATOR_ADDRESS`` with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``. Single-host runs never call it."""
    if os.environ.get("KINETICS_JAX_DISTRIBUTED") != "1" or jax.distributed.is_initialized():
        return
    count, index = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    jax.distributed.initialize(num_processes=int(count) if count else None, process_id=int(index) if index else None)


def data_mesh() -> Mesh:
    """A 1-D mesh ``data`` over every device of every host."""
    return Mesh(np.asarray(jax.devices()), ("data",))


# The builders below are cached per configuration and mesh: jax.jit traces a function again for every new
# function object or unequal static field (the optimizer's closures, the model's apply), and tracing the I3D step
# takes longer than training a small partition, so runs in one process (the demo's seven) trace once.


@functools.cache
def create_model(config: I3DConfig) -> I3D:
    return I3D(config.num_classes, config.width, config.dropout_rate, dtype=jnp.dtype(config.compute_dtype),
               batch_norm_decay=config.batch_norm_decay, subtract_mean_frame=config.subtract_mean_frame,
               cpu_ops=cpu_ops.preferred() if config.cpu_ops is None else config.cpu_ops)


def normalize_video(video: jax.Array) -> jax.Array:
    """uint8 frames → [-1, 1] float32 (on the device, so hosts ship bytes); float input is taken as already in it."""
    if video.dtype == jnp.uint8:
        return video.astype(jnp.float32) / 127.5 - 1.0
    return video.astype(jnp.float32)


def create_train_state(config: I3DConfig, mesh: Mesh) -> TrainState:
    """Freshly initialised state, replicated over the mesh (initialised from ``config.seed``)."""
    return _initializer(config, mesh)()


@functools.cache
def _initializer(config: I3DConfig, mesh: Mesh) -> Callable[[], TrainState]:
    model = create_model(config)
    video_shape = (1, config.frames, config.resolution, config.resolution, 3)

    def init() -> TrainState:
        init_key, dropout_key = jax.random.split(jax.random.PRNGKey(config.seed))
        variables = init_variables(model, video_shape, init_key)
        return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=optimizer(config),
                                 batch_stats=variables["batch_stats"], dropout_key=dropout_key)

    return jax.jit(init, out_shardings=NamedSharding(mesh, PartitionSpec()))


def train_step(state: TrainState, batch: Mapping[str, jax.Array],
               learning_rate: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on a global batch at ``learning_rate``: mean softmax cross-entropy, BatchNorm statistics
    updated. Pure."""
    dropout_key = jax.random.fold_in(state.dropout_key, state.step)
    video, labels = normalize_video(batch["video"]), batch["label"]

    def loss_fn(params):
        logits, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, video, train=True,
                                         rngs={"dropout": dropout_key}, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, (logits, updates["batch_stats"])

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}
    state = state.replace(opt_state=with_learning_rate(state.opt_state, learning_rate))
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics


def eval_step(state: TrainState, videos: jax.Array) -> jax.Array:
    """Clip-averaged class probabilities: ``[B, K, T, H, W, 3]`` (K clips per video) → ``[B, classes]``.

    Softmax probabilities are averaged over the K clips (not logits), so a single over-confident clip cannot
    outvote the rest by the scale of its logits. Pure."""
    b, k = videos.shape[:2]
    logits = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                            normalize_video(videos.reshape((b * k, *videos.shape[2:]))), train=False)
    return jax.nn.softmax(logits).reshape((b, k, -1)).mean(axis=1)


@functools.cache
def jit_train_step(mesh: Mesh) -> Callable[[TrainState, Mapping[str, jax.Array], jax.Array], tuple[TrainState, dict]]:
    """``train_step`` compiled for the mesh: state replicated in and out (donated), batch split over ``data``."""
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(train_step, in_shardings=(replicated, NamedSharding(mesh, PartitionSpec("data")), replicated),
                   out_shardings=(replicated, replicated), donate_argnums=0)


@functools.cache
def jit_eval_step(mesh: Mesh) -> Callable[[TrainState, jax.Array], jax.Array]:
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(eval_step, in_shardings=(replicated, NamedSharding(mesh, PartitionSpec("data"))),
                   out_shardings=NamedSharding(mesh, PartitionSpec("data")))


def to_global(array: np.ndarray, mesh: Mesh) -> jax.Array:
    """This host's slice of a global batch → one array split over ``data`` (the whole batch on a single host)."""
    return jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("data")), np.asarray(array))


def checkpoint_manager(workdir: Path) -> ocp.CheckpointManager:
    """Orbax manager under ``workdir/checkpoints`` keeping the last 3 (``train`` saves every
    ``checkpoint_every_steps`` steps and after the last, asynchronously).

    Orbax writes each step into a temporary directory and renames it when complete, so a kill mid-save leaves the
    previous step as the latest and resuming never reads a partial checkpoint."""
    options = ocp.CheckpointManagerOptions(max_to_keep=3)
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def restore_latest(manager: ocp.CheckpointManager, like: TrainState) -> TrainState:
    """The latest complete checkpoint, laid out as ``like`` (shapes, dtypes, shardings); ``like`` when none."""
    step = manager.latest_step()
    if step is None:
        return like
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def load_trained_state(config: I3DConfig, workdir: Path | str) -> TrainState:
    """The latest checkpoint ``train`` left in ``workdir`` (to evaluate in another process or run)."""
    maybe_initialize_distributed()
    missing = FileNotFoundError(f"no complete checkpoint under {Path(workdir).absolute() / 'checkpoints'}")
    if not (Path(workdir) / "checkpoints").is_dir():
        raise missing  # before the manager, which would create the directory
    with checkpoint_manager(Path(workdir)) as manager:
        if manager.latest_step() is None:
            raise missing
        return restore_latest(manager, create_train_state(config, data_mesh()))


def train(config: I3DConfig, batches_iterator_factory: BatchesFactory, workdir: Path | str, *,
          steps_per_epoch: int, on_metrics: MetricsCallback | None = None) -> TrainState:
    """Train ``config.epochs * steps_per_epoch`` steps, resuming from ``workdir``'s latest checkpoint if any.

    Each batch is this host's share of the global batch ``config.global_batch()`` (all of it on one host).
    ``on_metrics(steps_done, metrics)`` is called every ``config.log_every_steps`` steps (and after the last).
    Returns the final state, which is also checkpointed."""
    maybe_initialize_distributed()
    mesh = data_mesh()
    total_steps = config.epochs * steps_per_epoch
    host_batch = config.global_batch() // jax.process_count()
    schedule = learning_rate(config, steps_per_epoch)
    step_fn = jit_train_step(mesh)
    with checkpoint_manager(Path(workdir)) as manager:
        state = restore_latest(manager, create_train_state(config, mesh))
        start = int(state.step)
        batches = batches_iterator_factory(start)
        for step in range(start, total_steps):
            batch = next(batches, None)
            if batch is None:
                raise ValueError(f"batches ended after step {step} of {total_steps} (started at {start})")
            if len(batch["label"]) != host_batch or len(batch["video"]) != host_batch:
                raise ValueError(f"batch for step {step} has {len(batch['label'])} labels and {len(batch['video'])} "
                                 f"videos; this host's share of the global batch is {host_batch}")
            rate = schedule(step)
            state, metrics = step_fn(state, {key: to_global(batch[key], mesh) for key in ("video", "label")},
                                     jnp.asarray(rate, jnp.float32))
            done = step + 1
            if done % config.checkpoint_every_steps == 0 or done == total_steps:
                manager.save(done, args=ocp.args.StandardSave(state), force=True)
            if on_metrics and (done % config.log_every_steps == 0 or done == total_steps):
                values = {name: float(value) for name, value in jax.device_get(metrics).items()}
                on_metrics(done, values | {"learning_rate": float(rate)})
        manager.wait_until_finished()
    return state


class Evaluation(NamedTuple):
    """Per-video clip-averaged probabilities and labels, in the order given, and top-1 / top-5 accuracy."""

    probabilities: np.ndarray  # [videos, classes]
    labels: np.ndarray  # [videos]
    top1: float
    top5: float


def evaluate(state: TrainState, clip_batches: Iterable[Batch], pad_to: int = 0) -> Evaluation:
    """Score videos from batches {"video": [B, K, T, H, W, 3] (K clips each, e.g. 8), "label": [B]}.

    A batch shorter than ``pad_to`` (the last one), or whose size does not divide over this host's devices, is
    padded with copies of its first video, whose scores are dropped: every batch then has one shape and the step
    compiles once. On several hosts each gives its own videos, the same number of batches each."""
    maybe_initialize_distributed()
    mesh = data_mesh()
    step_fn = jit_eval_step(mesh)
    probabilities, labels = [], []
    for batch in clip_batches:
        videos, truth = np.asarray(batch["video"]), np.asarray(batch["label"])
        padded = max(len(videos), pad_to)
        padding = padded - len(videos) + (-padded % jax.local_device_count())
        valid = np.arange(len(videos) + padding) < len(videos)
        if padding:
            videos = np.concatenate([videos, np.repeat(videos[:1], padding, axis=0)])
            truth = np.concatenate([truth, np.repeat(truth[:1], padding)])
        scores = step_fn(state, to_global(videos, mesh))
        scores, truth, valid = (np.asarray(multihost_utils.process_allgather(x, tiled=True))
                                for x in (scores, truth, valid))
        probabilities.append(scores[valid])
        labels.append(truth[valid])
    probs, truth = np.concatenate(probabilities), np.concatenate(labels)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    return Evaluation(probs, truth, float(np.mean(top5[:, 0] == truth)),
                      float(np.mean((top5 == truth[:, None]).any(axis=1))))
