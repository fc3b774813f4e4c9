"""The comparison columns that need optional libraries (JAX, ONNX Runtime), shared by
`nnfast bench` and benchmarks/bench_train.py so both time the same code.

JAX: the 784-…-10 relu MLP with Glorot-uniform kernels and zero biases (Keras' defaults), the
whole training step (softmax cross-entropy, Adam with PyTorch's epsilon 1e-8) under ``jax.jit``.
ONNX Runtime: the nnfast model exported by ``Sequential.to_onnx``, run by an
``InferenceSession`` with ``intra_op_num_threads`` set to the thread count under test.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def jax_trainer(data, sizes, batch_size: int, seed: int):
    """(epoch(i) -> seconds, accuracy() -> test accuracy) for JAX; data = (xtr, ytr, xte, yte)
    float32 images and int labels, sizes = layer widths such as (784, 256, 128, 10).
    Raises ImportError without JAX."""
    import jax
    import jax.numpy as jnp

    xtr, ytr, xte, yte = data
    dims = list(zip(sizes[:-1], sizes[1:]))
    keys = jax.random.split(jax.random.PRNGKey(seed), len(dims))
    params = []
    for key, (k, m) in zip(keys, dims):
        lim = (6.0 / (k + m)) ** 0.5
        params.append((jax.random.uniform(key, (k, m), jnp.float32, -lim, lim),
                       jnp.zeros((m,), jnp.float32)))
    logits = jax_forward_fn()
    epoch, state = jax_fit(logits, params, xtr, ytr, batch_size, seed)

    def accuracy():
        pred = np.asarray(jnp.argmax(logits(state[0], xte), axis=1))
        return float((pred == yte).mean())

    return epoch, accuracy


def jax_fit(logits, params, xtr, ytr, batch_size: int, seed: int):
    """(epoch(i) -> seconds, state) for softmax cross-entropy on logits(params, x) and Adam
    (lr 1e-3, PyTorch's epsilon 1e-8), the whole step under jax.jit; state[0] holds the current
    params. Shuffled batches from a NumPy generator seeded with `seed`."""
    import jax
    import jax.numpy as jnp

    def loss_fn(p, x, y):
        lp = jax.nn.log_softmax(logits(p, x))
        return -jnp.mean(jnp.take_along_axis(lp, y[:, None], axis=1))

    @jax.jit
    def step(p, m, v, t, x, y):
        g = jax.grad(loss_fn)(p, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        lr = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        p = jax.tree_util.tree_map(lambda w, a, b: w - lr * a / (jnp.sqrt(b) + 1e-8), p, m, v)
        return p, m, v, t

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, 0]
    rng = np.random.default_rng(seed)
    n = len(xtr)

    def epoch(i):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        p, m, v, t = state
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            p, m, v, t = step(p, m, v, t, xtr[idx], ytr[idx])
        jax.block_until_ready(p)
        state[:] = [p, m, v, t]
        return time.perf_counter() - t0

    return epoch, state


def jax_forward_fn():
    """logits(params, x) of the relu MLP: params = [(W, b), ...], relu between layers."""
    import jax

    def logits(p, x):
        for i, (w, b) in enumerate(p):
            x = x @ w + b
            if i < len(p) - 1:
                x = jax.nn.relu(x)
        return x
    return logits


def jax_predictor(model):
    """x -> softmax outputs of ``model`` (an nnfast MLP of relu Dense layers and a softmax head)
    under ``jax.jit``, as a NumPy array. Raises ImportError without JAX."""
    import jax
    import jax.numpy as jnp

    weights = model.get_weights()
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(weights[::2], weights[1::2])]
    logits = jax_forward_fn()
    fn = jax.jit(lambda x: jax.nn.softmax(logits(params, x), axis=1))
    return lambda x: np.asarray(fn(x))


def ort_predictor(model, threads: int):
    """x -> outputs of ``model`` run by ONNX Runtime on ``threads`` intra-op threads. Raises
    ImportError without onnx or onnxruntime."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        model.to_onnx(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]
