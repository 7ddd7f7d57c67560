"""Bottlenecks on a Ray cluster (``--ray``): Ray Data reads and decodes the images on the
cluster's CPUs and a pool of extractor actors, each holding the backbone once, turns them
into features. Features stream back to this process, which writes them into the same
content-addressed cache as a local run (:func:`harness.pipeline.extract.extract_features`),
so a later local run is warm and a killed run resumes from its last shard.

Every node must read the images at the same path (one machine, or a shared file system);
a worker that cannot read a file the driver can fails the run with one line saying so.
Ray is an optional extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from harness.errors import RAY_INSTALL_HINT, HarnessError, printable
from harness.pipeline.extract import FeatureStream
from harness.plan import Precision, Runtime, Weights
from harness.registry import BackboneSpec, ResolvedWeights

#: Restarts of an extractor actor (and retries of its batch) before the run fails.
RESTARTS = 3
WORKER_REFUSED = "a Ray worker cannot extract"
#: Status of a row that decoded; otherwise "decode" (dropped, as locally) or "read: <why>".
OK = ""


def import_ray() -> Any:
    """Ray, or one line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise HarnessError(RAY_INSTALL_HINT) from exc
    return ray


def connect(address: str) -> dict[str, float]:
    """Join (or start) the Ray cluster ``address`` names; returns its resources.

    ``local`` starts a Ray on this machine, or joins the one ``RAY_ADDRESS`` names; ``auto``
    joins the cluster this machine is part of; ``ray://host:port`` joins a remote one.
    A Ray already initialised in this process is used as it is.
    """
    ray = import_ray()
    for name in ("ray", "ray.data"):  # execution plans and notices stay in Ray's log files
        logging.getLogger(name).setLevel(logging.ERROR)
    if not ray.is_initialized():
        # Ray's C++ core logs an error line for actor arguments kept in the object store
        # with restarts on (they stay in scope for the whole run); a user's setting wins.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        try:
            ray.init(
                address=None if address == "local" else address,
                include_dashboard=False,
                log_to_driver=False,  # workers' TensorFlow start-up chatter stays in Ray's logs
                configure_logging=False,
            )
        except Exception as exc:
            raise HarnessError(f"cannot join Ray cluster {address!r}: {exc}") from exc
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # harness draws its own bar from the stream
    context.print_on_execution_start = False
    context.execution_options.verbose_progress = False
    return dict(ray.cluster_resources())


def _read(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Read a batch of files on a worker: their bytes, or why this node cannot read them."""
    data, status = [], []
    for path in batch["path"]:
        try:
            with open(str(path), "rb") as fh:
                data.append(fh.read())
            status.append(OK)
        except OSError as exc:
            data.append(b"")
            status.append(f"read: {exc.strerror or exc} on {socket.gethostname()}")
    return {
        "index": batch["index"],
        "data": np.array(data, dtype=object),
        "status": np.array(status, dtype=object),
    }


class Extractor:
    """One backbone per actor, built once, on the runtime the run chose.

    Each call's encoded images go through the actor's one decoding pipeline (tf.data,
    the same decoding as a local run, overlapping the backbone; see
    :class:`harness.pipeline.extract.EncodedFeed`); only bytes come in and only features
    go out (pixels would be 6x the bytes through Ray's object store).
    """

    def __init__(
        self,
        spec: BackboneSpec,
        weights: Weights,
        resolved: ResolvedWeights | None,
        weights_dir: str | None,
        runtime: Runtime,
        precision: Precision,
        cache_dir: str | None,
        batch_size: int,
    ) -> None:
        from harness.pipeline.backbone import load_backbone
        from harness.pipeline.extract import EncodedFeed
        from harness.pipeline.runtimes import on_runtime

        runtime, precision = Runtime.parse(runtime), Precision.parse(precision)
        if resolved is not None and not resolved.path.is_file():
            resolved = None  # another machine: this node finds its own copy, as a local run would
        self.backbone = load_backbone(spec, weights, weights_dir, resolved=resolved)
        notices: list[str] = []
        self.backbone = on_runtime(self.backbone, runtime, precision, weights, cache_dir, notices.append)
        if self.backbone.runtime is not runtime or self.backbone.precision is not precision:
            # The driver keys the cache by the runtime it planned: features from another
            # runtime must never be written under that key.
            why = notices[-1].split("notice: ", 1)[-1] if notices else "it fell back"
            why = why.removesuffix("; extracting with TensorFlow")
            raise HarnessError(f"{WORKER_REFUSED} {spec.name} on {runtime} as planned: {why}")
        self.feed = EncodedFeed(self.backbone, batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        readable = np.flatnonzero(batch["status"] == OK)
        status = batch["status"].copy()
        status[readable] = "decode"  # until its features come back
        features = np.zeros((len(status), self.backbone.feature_size), np.float32)
        for index, feats in self.feed(list(batch["data"][readable])):
            rows = readable[index]
            features[rows] = feats
            status[rows] = OK
        return {"index": batch["index"], "features": features, "status": status}


def _batches(ds: Any) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's batches; an extractor's refusal comes out as its own one line, not
    wrapped in Ray's traceback."""
    try:
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")
    except Exception as exc:
        text = str(exc)
        if WORKER_REFUSED in text:
            line = text[text.rindex(WORKER_REFUSED) :].splitlines()[0]
            raise HarnessError(line) from None
        raise


def ray_stream(
    address: str,
    spec: BackboneSpec,
    *,
    weights: Weights,
    resolved: ResolvedWeights | None = None,
    weights_dir: str | None = None,
    runtime: Runtime,
    precision: Precision = Precision.FP32,
    cache_dir: str | None,
    batch_size: int,
    actors: int | None = None,
    per_call: int | None = None,
) -> FeatureStream:
    """A :data:`harness.pipeline.extract.FeatureStream` that computes on a Ray cluster.

    Args:
        address: ``local``, ``auto`` or a ``ray://`` address (see :func:`connect`).
        spec: The backbone; shipped to the actors (its plugin must be installed on every node).
        weights: ImageNet or random.
        resolved: The weights file the run plan found; a node loads it at that path, or
            where it has none there, resolves its own (trying ``weights_dir`` first).
        weights_dir: See ``resolved``.
        runtime: TensorFlow or LiteRT, as decided for this run: a worker that cannot
            honour it fails its block, so the cache only ever holds what a local run would
            write under its key.
        cache_dir: Where a node keeps its converted LiteRT file.
        batch_size: Images per backbone call.
        actors: Extractor actors (default: one per 2 CPUs of the cluster).
        per_call: Images per actor call (default up to 32 batches): decoding overlaps the
            backbone within a call; a killed actor's call is retried whole.
    """

    runtime, precision = Runtime.parse(runtime), Precision.parse(precision)

    def stream(paths: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ray = import_ray()
        cpus = connect(address).get("CPU", 1.0)
        pool = actors or max(1, int(cpus // 2))
        # Images per actor call: up to 32 batches, but at least 4 calls per actor, so the
        # progress bar moves. Small calls cost: with a decoding pipeline built per call,
        # mobilenet_v1_025 on 2 cores ran at 0.52 of the local rate at 128 images a call,
        # against 0.76 with the actor's one pipeline (EncodedFeed), side by side; at 512,
        # its steady rate within a call was 0.91 of local (median of 3 rounds).
        rows = per_call or max(batch_size, min(32 * batch_size, -(-len(paths) // (4 * pool))))
        items = [{"index": i, "path": os.fspath(p)} for i, p in enumerate(paths)]
        # One block per actor call: a block's features come back when its call ends, so
        # larger blocks would hold back the stream (and the progress bar) and be retried whole.
        blocks = max(1, -(-len(items) // rows))
        pool = min(pool, blocks)
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        # Reading is its own stage (tasks on any node), so that on a network file system
        # the next block's files are fetched while the actors compute.
        ds = ds.map_batches(_read, batch_size=rows, batch_format="numpy")
        with warnings.catch_warnings():  # restarts are set the only way Ray Data takes them
            warnings.simplefilter("ignore")
            ds = ds.map_batches(
                Extractor,
                fn_constructor_kwargs={
                    "spec": spec,
                    "weights": weights,
                    "resolved": resolved,
                    "weights_dir": weights_dir,
                    "runtime": runtime,
                    "precision": precision,
                    "cache_dir": cache_dir,
                    "batch_size": batch_size,
                },
                batch_size=rows,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=pool),
                num_cpus=1,
                # A killed actor is restarted and its batch retried, so no image is lost;
                # an actor that keeps dying (a node without TensorFlow) fails the run.
                max_restarts=RESTARTS,
                max_task_retries=RESTARTS,
            )
        for batch in _batches(ds):
            status = batch["status"]
            unreadable = [(int(i), s) for i, s in zip(batch["index"], status) if str(s).startswith("read:")]
            if unreadable:
                i, why = unreadable[0]
                raise HarnessError(
                    f"a Ray worker cannot read {printable(paths[i])} ({why.removeprefix('read: ')}): "
                    "every node must see the images at the same path (one machine or a shared file system)"
                )
            ok = status == OK
            yield batch["index"][ok].astype(np.int64), batch["features"][ok]

    return stream
