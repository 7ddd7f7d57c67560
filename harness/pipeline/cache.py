"""On-disk bottleneck cache.

Layout: ``<cache_dir>/bottlenecks/v2/<backbone>-<identity>/<uuid>-<sha256>.shard``.
The identity hashes the backbone spec and its weights; inside, entries are keyed by the
SHA-1 of an image's bytes, so a renamed image is reused and a changed one is recomputed.

A shard holds what one extraction batch computed: two ``.npy`` arrays written one after
the other, the keys (``S40``, hex digests) and then the features (``float32 [N, D]``).
It loads in a single read with ``allow_pickle=False`` (nothing is unpickled), and since
the features form one contiguous block, a store too large for memory can be
memory-mapped and read row by row (:meth:`BottleneckCache.open_features`).

The shard's SHA-256 is part of its file name and checked on load: a corrupted shard is
set aside and its images recomputed. Shards are written to a temporary file and renamed
into place, so a run killed at any moment leaves either the whole shard or nothing, and
concurrent runs never write the same file.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.atomic import atomic_write

SUFFIX = ".shard"
KEY_DTYPE = np.dtype("S40")  # sha1 hex digest; raw bytes would lose trailing NULs in "S"
COMPACT_AT = 32  # merge shards once a backbone has this many


@dataclass
class CacheLoad:
    """What :meth:`BottleneckCache.load` found."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    corrupt_shards: list[str] = field(default_factory=list)


class BottleneckCache:
    """Bottleneck features of one backbone (with its weights), keyed by image hash."""

    def __init__(self, directory: str | os.PathLike[str], feature_size: int) -> None:
        """``directory`` is where :class:`harness.pipeline.cacheroot.CacheRoot` keeps them."""
        self.directory = Path(directory)
        self.feature_size = feature_size

    def _shards(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob(f"*{SUFFIX}") if not p.name.startswith("."))

    def _set_aside(self, path: Path) -> None:
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except OSError:
            pass

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """The shard's keys and features, or None when it is corrupt (then set aside)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # compacted away by a concurrent run
            return np.empty(0, KEY_DTYPE), np.empty((0, self.feature_size), np.float32)
        decoded = None
        if hashlib.sha256(data).hexdigest()[:16] == _checksum_in_name(path):
            decoded = _decode(data, self.feature_size)
        if decoded is None:
            self._set_aside(path)
        return decoded

    def _sweep_stale_temporaries(self) -> None:
        """Remove temporary files left by writers that were killed (their pid is gone)."""
        if not self.directory.is_dir():
            return
        for tmp in self.directory.glob(".*.tmp"):
            try:
                pid = int(tmp.name.rsplit(".", 2)[-2])
                os.kill(pid, 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except (ValueError, PermissionError, OSError):
                pass

    def load(self, keys: set[str] | None = None) -> CacheLoad:
        """Read every shard; return features for ``keys`` (all keys if None)."""
        self._sweep_stale_temporaries()
        result = CacheLoad()
        for shard in self._shards():
            decoded = self._read_shard(shard)
            if decoded is None:
                result.corrupt_shards.append(shard.name)
                continue
            for key_bytes, feats in zip(*decoded):
                key = key_bytes.decode("ascii")
                if keys is None or key in keys:
                    result.features[key] = feats
        return result

    def open_features(self, keys: list[str]) -> ShardedFeatures:
        """Memory-mapped features of ``keys``, in order, without reading them into memory.

        For stores too large to hold (a million vectors): only the keys are read; feature
        rows come from the page cache when a batch asks for them. Each shard's checksum
        is verified by streaming it once; corrupt shards are set aside.

        Raises:
            KeyError: if a key is not in the cache.
        """
        self._sweep_stale_temporaries()
        blocks: list[np.ndarray] = []
        all_keys: list[np.ndarray] = []
        for shard in self._shards():
            if not _checksum_ok(shard):
                self._set_aside(shard)
                continue
            opened = _open_mapped(shard, self.feature_size)
            if opened is not None:
                all_keys.append(opened[0])
                blocks.append(opened[1])
        if not blocks:
            raise KeyError("the cache is empty")
        stored = np.concatenate(all_keys)
        block_of = np.repeat(np.arange(len(blocks)), [len(k) for k in all_keys])
        row_of = np.concatenate([np.arange(len(k)) for k in all_keys])
        order = np.argsort(stored, kind="stable")
        wanted = np.asarray(keys, dtype=KEY_DTYPE)
        position = np.searchsorted(stored[order], wanted).clip(0, len(stored) - 1)
        found = order[position]
        missing = stored[found] != wanted
        if missing.any():
            raise KeyError(f"{int(missing.sum())} keys are not cached, e.g. {wanted[missing][0].decode()}")
        return ShardedFeatures(blocks, block_of[found], row_of[found], self.feature_size)

    def write(self, keys: list[str], features: np.ndarray) -> Path:
        """Atomically write one shard holding ``features[i]`` for ``keys[i]``."""
        if len(keys) != len(features):
            raise ValueError("keys and features differ in length")
        data = _encode(keys, features)
        final = self.directory / f"{uuid.uuid4().hex}-{hashlib.sha256(data).hexdigest()[:16]}{SUFFIX}"
        atomic_write(final, data, what=f"the bottleneck cache at {final.parent}")
        return final

    def compact(self) -> None:
        """Merge many small shards into one, so loading stays a few reads."""
        shards = self._shards()
        if len(shards) < COMPACT_AT:
            return
        loaded = self.load()
        if not loaded.features:
            return
        keys = list(loaded.features)
        self.write(keys, np.stack([loaded.features[k] for k in keys]))
        for shard in shards:  # only after the merged shard is safely in place
            try:
                shard.unlink()
            except FileNotFoundError:
                pass


class ShardedFeatures:
    """A read-only ``[N, D]`` float32 matrix spread over memory-mapped shards.

    Supports ``len()`` and integer-array indexing (``features[idx]``), which is all
    :func:`harness.pipeline.train.cached_sampler` needs.
    """

    def __init__(
        self, blocks: list[np.ndarray], block_of: np.ndarray, row_of: np.ndarray, width: int
    ) -> None:
        self._blocks = blocks
        self._block_of = block_of
        self._row_of = row_of
        self.shape = (len(block_of), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.atleast_1d(np.asarray(index))
        out = np.empty((len(index), self.shape[1]), np.float32)
        block_of, row_of = self._block_of[index], self._row_of[index]
        for block in np.unique(block_of):
            hit = block_of == block
            out[hit] = self._blocks[block][row_of[hit]]
        return out


def _encode(keys: list[str], features: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(keys, dtype=KEY_DTYPE), allow_pickle=False)
    np.save(buffer, np.ascontiguousarray(features, dtype="<f4"), allow_pickle=False)
    return buffer.getvalue()


def _decode(data: bytes, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Keys and features of a shard's bytes, or None if they are not a valid shard."""
    stream = io.BytesIO(data)
    try:
        keys = np.load(stream, allow_pickle=False)
        features = np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    valid = (
        keys.dtype == KEY_DTYPE
        and features.dtype == np.float32
        and features.shape == (len(keys), width)
        and stream.tell() == len(data)
    )
    return (keys, features) if valid else None


def _open_mapped(path: Path, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Read a shard's keys and memory-map its features block."""
    try:
        with open(path, "rb") as fh:
            keys = np.load(fh, allow_pickle=False)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
    except (ValueError, OSError, EOFError):
        return None
    if keys.dtype != KEY_DTYPE or dtype != np.float32 or fortran or shape != (len(keys), width):
        return None
    return keys, np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _checksum_in_name(path: Path) -> str:
    return path.name.removesuffix(SUFFIX).rsplit("-", 1)[-1]


def _checksum_ok(path: Path) -> bool:
    """Stream the file through SHA-256 (constant memory) and compare with its name."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest()[:16] == _checksum_in_name(path)
