"""Many softmax layers trained at once on cached bottlenecks (for ``--repeats``).

Each layer is retrain.py's SGD (initialisation, learning rate, steps), and every step
draws one batch from all images; each layer learns from the rows in its own training
set, averaged over those rows. Side by side, the layers share each step's matrix
products and its Python overhead.

A step costs two products with the features, ``4 * batch * D * layers * classes``
flops (the primal form). With fewer images N than about 1.75 times the feature size D, the
same SGD is cheaper in its dual form: the weights are ``W0 + X^T A`` for one coefficient
row per image, the logits of a batch are ``X[batch] W0 + G[batch] A`` with the Gram
matrix ``G = X X^T`` computed once, and a step changes only the batch's rows of ``A``:
one product of ``2 * batch * N * layers * classes`` flops. Both forms are the same
arithmetic up to float rounding (a test holds them together). Everything that does not
depend on the weights (which rows, their labels, each layer's share of the batch) is
drawn for many steps at once, so that a step is a handful of NumPy calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from harness.pipeline.train import Head, initial_weights
from harness.plan import TrainConfig

#: Steps whose batches are drawn at once, and the most memory that may take.
CHUNK, CHUNK_BYTES = 256, 32 * 2**20
#: Largest Gram matrix the dual form may hold (N images: N * N * 4 bytes).
DUAL_MAX_BYTES = 256 * 2**20


def _plans(
    rng: np.random.Generator,
    labels: np.ndarray,
    members: np.ndarray,
    batch: int,
    c: int,
    width: int,
    steps: int,
    lr: float,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per step: the batch's rows; each (row, layer)'s weight ``lr * member / members in
    batch``; that weight at each (row, layer)'s true class in a ``[batch, width]`` array;
    and which positions are their image's first draw in the batch."""
    k = len(members)
    member_of = members.T.astype(np.float32)  # [N, K]
    column = np.arange(k) * c
    chunk = max(1, min(CHUNK, CHUNK_BYTES // (batch * width * 4)))
    row_start = (np.arange(chunk * batch) * width).reshape(chunk, batch, 1)
    for start in range(0, steps, chunk):
        idx = rng.integers(0, len(labels), (min(chunk, steps - start), batch))
        mine = member_of[idx]  # [S, B, K]
        mine *= np.float32(lr) / np.maximum(mine.sum(axis=1, keepdims=True), 1.0)
        target = np.zeros((*idx.shape, width), np.float32)
        # By flat position: twice as fast as np.put_along_axis, which took half the drawing.
        target.reshape(-1)[(row_start[: len(idx)] + column + labels[idx][:, :, None]).ravel()] = mine.ravel()
        # An image drawn twice in a batch must be updated twice: the first draw of each
        # image is one update by row, the rare repeats go through np.subtract.at.
        order = np.argsort(idx, axis=1, kind="stable")
        ordered = np.take_along_axis(idx, order, axis=1)
        first_in_order = np.ones(idx.shape, bool)
        first_in_order[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        first = np.empty_like(first_in_order)
        np.put_along_axis(first, order, first_in_order, axis=1)
        yield from zip(idx, mine, target, first)


class _Gradient:
    """A batch's logits ``[B, width]`` (K layers of C classes, then padding) to
    ``weight * d(cross-entropy)/d(logits)``, zero in the padding.

    NumPy's reductions over a short axis are slow (the per-layer max and sum over 5
    classes took 80 of a step's 110 us of softmax), so the sums are products with a
    0/1 matrix (zero rows for the padding), and the exponentials are taken without
    subtracting each layer's maximum first; if that overflows or underflows anywhere
    (logits beyond about +-70), the batch is redone the usual way.
    """

    def __init__(self, batch: int, k: int, c: int, width: int) -> None:
        self.k, self.c = k, c
        self.grad = np.empty((batch, width), np.float32)
        self.sums = np.empty((batch, k), np.float32)
        self.ones = np.zeros((width, k), np.float32)
        self.ones[: k * c] = np.kron(np.eye(k, dtype=np.float32), np.ones((c, 1), np.float32))

    def __call__(self, logits: np.ndarray, weight: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``target``: each (row, layer)'s weight at its true class, zero elsewhere."""
        e, sums = self.grad, self.sums
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is redone below
            np.exp(logits, out=e)
            np.matmul(e, self.ones, out=sums)
        if not (sums.min() > 1e-30 and sums.max() < 1e30):
            kc = self.k * self.c
            v = logits[:, :kc].reshape(len(e), self.k, self.c)
            e[:, :kc] = np.exp(v - v.max(axis=2, keepdims=True)).reshape(len(e), kc)
            np.matmul(e, self.ones, out=sums)
        np.divide(weight, sums, out=sums)
        e *= sums @ self.ones.T  # zero in the padding
        e -= target
        return e


def use_dual(n: int, dim: int) -> bool:
    """The dual form when its step is cheaper and its Gram matrix fits.

    A primal step costs two products over D, a dual one a product over N (and a gather
    of N-long rows): with 1,500 images, D = 1,024 took 1.6 s primal and 1.4 s dual.
    """
    return n < 1.75 * dim and n * n * 4 <= DUAL_MAX_BYTES


def train_heads_together(
    features: np.ndarray,
    labels: np.ndarray,
    members: np.ndarray,
    n_classes: int,
    config: TrainConfig,
    dual: bool | None = None,
) -> list[Head]:
    """Train one softmax layer per row of ``members`` (which images each may learn from), at once.

    The batch is sized so that each layer sees ``config.batch_size`` rows on average (the
    exact number varies from step to step).

    Args:
        features: ``[N, D]`` bottlenecks of every image.
        labels: ``[N]`` class indices.
        members: ``[K, N]`` booleans: image n is in layer k's training set.
        n_classes: Number of classes.
        config: Steps, learning rate, batch size and seed.
        dual: Force the dual (True) or primal (False) form; None picks the cheaper.
    """
    n, dim = features.shape
    k, c = len(members), n_classes
    # Zero columns pad the layers to a multiple of 16: BLAS ran 45 columns 15-25% slower than 48.
    width = -(-k * c // 16) * 16
    rng = np.random.default_rng(config.seed)
    # The bias is one more weight row, on a feature that is always 1; it starts at 0.
    w0 = np.zeros((dim + 1, width), np.float32)
    w0[:dim, : k * c] = initial_weights(rng, (dim, k * c))
    x = np.empty((n, dim + 1), np.float32)
    x[:, :dim] = features
    x[:, dim] = 1.0
    batch = int(np.ceil(config.batch_size * n / max(1.0, float(members.sum(1).mean()))))
    plans = _plans(rng, labels, members, batch, c, width, config.steps, config.learning_rate)
    gradient = _Gradient(batch, k, c, width)
    logits = np.empty((batch, width), np.float32)
    if dual if dual is not None else use_dual(n, dim):
        # The logits of a batch are gram[idx] @ coef + x[idx] @ w0: one product, with
        # x @ w0 as extra columns of the Gram matrix and an identity below coef.
        gram = np.empty((n, n + width), np.float32)
        np.matmul(x, x.T, out=gram[:, :n])
        np.matmul(x, w0, out=gram[:, n:])
        coef = np.zeros((n + width, width), np.float32)  # the weights are w0 + x.T @ coef[:n]
        coef[n:] = np.eye(width, dtype=np.float32)
        for idx, weight, target, first in plans:
            np.matmul(gram[idx], coef, out=logits)  # fancy indexing gathered twice as fast as take
            grad = gradient(logits, weight, target)
            coef[idx[first]] -= grad[first]
            if not first.all():
                np.subtract.at(coef, idx[~first], grad[~first])
        weights = w0 + x.T @ coef[:n]
    else:
        weights = w0
        update = np.empty_like(weights)
        for idx, weight, target, _ in plans:
            xb = x[idx]
            np.matmul(xb, weights, out=logits)
            np.matmul(xb.T, gradient(logits, weight, target), out=update)
            weights -= update
    layers = [slice(i * c, (i + 1) * c) for i in range(k)]
    return [Head(weights[:dim, cols].copy(), weights[dim, cols].copy()) for cols in layers]
