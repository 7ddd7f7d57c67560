"""On-disk bottleneck cache.

Layout: ``<cache_dir>/bottlenecks/<backbone>-<identity>/<shard>.npy``. The identity
hashes the backbone spec and its weights; inside, entries are keyed by the SHA-1 of
an image's bytes, so a renamed image is reused and a changed one is recomputed.

A shard is one ``.npy`` file of records ``(key, features)`` written by one extraction
batch. It loads in a single read, with ``allow_pickle=False`` (nothing is unpickled).
Its SHA-256 is part of its file name and checked on load: a corrupted shard is moved
aside and its images recomputed. Shards are written to a temporary file and renamed
into place, so a run killed at any moment leaves either the whole shard or nothing,
and concurrent runs never write the same file.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

FORMAT_VERSION = 1
KEY_CHARS = 40  # sha1 hex digest; raw bytes would lose trailing NULs in an "S" field
COMPACT_AT = 32  # merge shards once a backbone has this many


def default_cache_dir() -> Path:
    """The per-user cache directory (e.g. ``~/.cache/harness`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("harness", appauthor=False))


def _record_dtype(feature_size: int) -> np.dtype:
    return np.dtype([("key", f"S{KEY_CHARS}"), ("features", "<f4", (feature_size,))])


@dataclass
class CacheLoad:
    """What :meth:`BottleneckCache.load` found."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    corrupt_shards: list[str] = field(default_factory=list)


class BottleneckCache:
    """Bottleneck features of one backbone (with its weights), keyed by image hash."""

    def __init__(
        self, cache_dir: str | os.PathLike[str], name: str, identity: str, feature_size: int
    ) -> None:
        self.directory = Path(cache_dir) / "bottlenecks" / f"v{FORMAT_VERSION}" / f"{name}-{identity}"
        self.feature_size = feature_size
        self.dtype = _record_dtype(feature_size)

    def _shards(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.npy") if not p.name.startswith("."))

    def _read_shard(self, path: Path) -> np.ndarray | None:
        """The shard's records, or None when it is corrupt (it is then moved aside)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # compacted away by a concurrent run
            return np.empty(0, self.dtype)
        expected = path.stem.rsplit("-", 1)[-1]
        ok = hashlib.sha256(data).hexdigest()[:16] == expected
        records = None
        if ok:
            try:
                records = np.load(io.BytesIO(data), allow_pickle=False)
            except (ValueError, OSError, EOFError):
                records = None
        if records is None or records.dtype != self.dtype:
            try:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            except OSError:
                pass
            return None
        return records

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
            records = self._read_shard(shard)
            if records is None:
                result.corrupt_shards.append(shard.name)
                continue
            for key_bytes, feats in zip(records["key"], records["features"]):
                key = key_bytes.decode("ascii")
                if keys is None or key in keys:
                    result.features[key] = feats
        return result

    def open_features(self, keys: list[str]) -> ShardedFeatures:
        """Memory-mapped features of ``keys``, in order, without reading them into memory.

        For stores too large to hold (a million vectors): rows are read from the page
        cache only when a batch asks for them. Shards are verified against their
        checksum by streaming them once; corrupt ones are set aside.

        Raises:
            KeyError: if a key is not in the cache.
        """
        self._sweep_stale_temporaries()
        arrays: list[np.ndarray] = []
        where: dict[str, tuple[int, int]] = {}
        for shard in self._shards():
            if not _checksum_ok(shard):
                os.replace(shard, shard.with_name(shard.name + ".corrupt"))
                continue
            try:
                records = np.load(shard, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError):
                continue
            if records.dtype != self.dtype:
                continue
            index = len(arrays)
            arrays.append(records)
            for row, key in enumerate(records["key"]):
                where[key.decode("ascii")] = (index, row)
        missing = [k for k in keys if k not in where]
        if missing:
            raise KeyError(f"{len(missing)} keys are not cached, e.g. {missing[0]}")
        located = np.array([where[k] for k in keys], dtype=np.int64).reshape(-1, 2)
        return ShardedFeatures(arrays, located[:, 0], located[:, 1], self.feature_size)

    def write(self, keys: list[str], features: np.ndarray) -> Path:
        """Atomically write one shard holding ``features[i]`` for ``keys[i]``."""
        if len(keys) != len(features):
            raise ValueError("keys and features differ in length")
        records = np.empty(len(keys), self.dtype)
        records["key"] = [k.encode("ascii") for k in keys]
        records["features"] = features
        buffer = io.BytesIO()
        np.save(buffer, records, allow_pickle=False)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        final = self.directory / f"{uuid.uuid4().hex}-{digest}.npy"
        _atomic_write(final, data)
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
    :func:`harness.train.cached_sampler` needs.
    """

    def __init__(
        self, shards: list[np.ndarray], shard_of: np.ndarray, row_of: np.ndarray, width: int
    ) -> None:
        self._shards = shards
        self._shard_of = shard_of
        self._row_of = row_of
        self.shape = (len(shard_of), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.atleast_1d(np.asarray(index))
        out = np.empty((len(index), self.shape[1]), np.float32)
        shard_of, row_of = self._shard_of[index], self._row_of[index]
        for shard in np.unique(shard_of):
            hit = shard_of == shard
            out[hit] = self._shards[shard]["features"][row_of[hit]]
        return out


def _checksum_ok(path: Path) -> bool:
    """Stream the file through SHA-256 (constant memory) and compare with its name."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest()[:16] == path.stem.rsplit("-", 1)[-1]


def _atomic_write(final: Path, data: bytes) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:
        raise HarnessError(
            f"cannot write the bottleneck cache at {final.parent}: {exc.strerror or exc}"
        ) from exc
