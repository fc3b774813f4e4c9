"""Byte order, alignment and float32 rounding at the wrappers, on both backends.

Inputs that are byte-swapped or unaligned (a view at an odd byte offset) give the values of
their native aligned twins: NumPy reads them, the compiled backend copies them first (C reading
them is undefined behaviour: an NNFAST_SANITIZE=1 build aborts at ukr_simd.h without the copy).
Outputs are written in place, so such an output is rejected with the same type and message on
both backends. Hyperparameters the float32 kernels use as float must stay valid once rounded."""
import importlib
import inspect
import re
import zlib

import numpy as np
import pytest
from cases import CASES, Gen
from cases_conv import CONV_CASES

from nnfast import backends, ops
from nnfast.backends import reference

BOTH = [reference] + ([importlib.import_module("nnfast.backends.compiled")]
                      if backends.compiled_available() else [])

# In/out arguments beyond each case's `inplace` list (dense_forward's z is an output, the
# backward functions' z an input).
OUT_NAMES = {"out", "grad", "dz", "dW", "db", "dx"}


def swapped(a):
    return a.astype(a.dtype.newbyteorder())


def unaligned(a):
    """A writeable copy of a one byte past an aligned address (bytearray-backed)."""
    u = np.frombuffer(bytearray(a.nbytes + 1), a.dtype, count=a.size, offset=1)
    u = u.reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned or a.size == 0
    return u


def _one_case_per_function():
    """The first case of each function, and every conv / pool / batch-norm case: theirs differ
    in which arguments are arrays (z and y for the activations that need them, gamma and beta
    or None, the moving statistics updated or only read)."""
    seen = {}
    for case in CASES:
        seen.setdefault(case.label if case in CONV_CASES else case.name, case)
    return list(seen.values())


def _shape(case):
    """A small shape with data in every dimension. The conv and pool cases' shapes also hold
    a padding name and None (default strides): only their integers count."""
    def sizes(s):
        return [v for v in s if isinstance(v, int)]
    return next((s for s in case.shapes if min(sizes(s)) >= 2 and np.prod(sizes(s)) >= 20),
                case.shapes[-1])


def _bind(case, args, kwargs):
    """{argument name: value}. A case with a `call` hook (MLPPlan) takes its own arguments,
    not the backend object's: they are named by position."""
    if case.call is not None:
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
    return dict(inspect.signature(getattr(ops, case.name)).bind(*args, **kwargs).arguments)


def _call(case, bound):
    """Results plus the final contents of the in-place arguments."""
    fn = getattr(ops, case.name)
    if case.call is not None:
        n = sum(k.startswith("arg") for k in bound)
        res = case.call(fn, [bound[f"arg{i}"] for i in range(n)],
                        {k: v for k, v in bound.items() if not k.startswith("arg")})
    else:
        res = fn(**bound)
    res = list(res) if isinstance(res, tuple) else [res]
    return res + [bound[name] for name in case.inplace]


@pytest.mark.parametrize("case", _one_case_per_function(), ids=lambda c: c.label)
@pytest.mark.parametrize("convert", [swapped, unaligned])
def test_inputs_are_read_like_native_ones(backend, case, convert, dtype):
    seed = zlib.crc32(case.label.encode())
    args, kwargs = case.make(Gen(seed, dtype, "c"), _shape(case))
    bound = _bind(case, args, kwargs)
    outputs = set(case.inplace) | OUT_NAMES | ({"z"} if case.name == "dense_forward" else set())
    inputs = [k for k, v in bound.items() if isinstance(v, np.ndarray) and k not in outputs]
    assert inputs or case.name == "clip_grad_norm"

    def fresh(conv):
        return {k: (conv(v) if k in inputs else v.copy()) if isinstance(v, np.ndarray) else v
                for k, v in bound.items()}
    want = _call(case, fresh(lambda a: a))
    got = _call(case, fresh(convert))
    for w, g in zip(want, got):
        if isinstance(w, np.ndarray):
            assert g.dtype == w.dtype and g.dtype.isnative, (g.dtype, w.dtype)
        np.testing.assert_array_equal(g, w, err_msg=f"{case.label} with {convert.__name__} inputs")


def _outputs(dt):
    """(function, kwargs with every output given, native; names of those outputs)."""
    rng = np.random.default_rng(7)

    def a(*shape):
        return rng.standard_normal(shape).astype(dt)
    x, W, dy = a(4, 5), a(5, 3), a(4, 3)
    lab = np.array([0, 2, 1, 2])
    p = {"params": a(6), "grads": a(6)}
    loss = {"grad": a(4, 3)}
    return [
        ("gemm", {"a": x, "b": W, "out": a(4, 3)}),
        ("activation_forward", {"x": x, "activation": "relu", "out": a(4, 5)}),
        ("activation_backward", {"dy": dy, "z": a(4, 3), "y": a(4, 3), "activation": "elu",
                                 "alpha": 1.0, "out": a(4, 3)}),
        ("dense_forward", {"x": x, "W": W, "out": a(4, 3), "z": a(4, 3)}),
        ("dense_backward", {"dy": dy, "x": x, "W": W, "z": a(4, 3), "y": None,
                            "activation": "relu", "dW": a(5, 3), "db": a(3), "dx": a(4, 5),
                            "dz": a(4, 3)}),
        ("dropout_forward", {"x": x, "rate": 0.5, "seed": 1, "step": 2, "out": a(4, 5)}),
        ("dropout_backward", {"dy": x, "rate": 0.5, "seed": 1, "step": 2, "out": a(4, 5)}),
        ("argmax_rows", {"x": x, "out": np.zeros(4, np.int64)}),
        ("column_sums", {"x": x, "out": a(5)}),
        ("softmax_cross_entropy", {"logits": dy, "targets": lab, **loss}),
        ("binary_cross_entropy", {"logits": dy, "targets": a(4, 3), **loss}),
        ("mse", {"pred": dy, "target": a(4, 3), **loss}),
        ("huber", {"pred": dy, "target": a(4, 3), **loss}),
        ("sgd_update", {**p, "velocity": a(6), "momentum": 0.9}),
        ("adam_update", {**p, "m": a(6), "v": a(6) ** 2, "step": 1}),
        ("rmsprop_update", {**p, "sq": a(6) ** 2, "momentum": 0.9, "velocity": a(6)}),
        ("adagrad_update", {**p, "acc": a(6) ** 2}),
        ("clip_grad_norm", {"grads": a(6), "max_norm": 1.0}),
        *_new_op_outputs(a, dt),
    ]


def _new_op_outputs(a, dt):
    """The conv, pool, batch-norm and plan entries of _outputs (batch norm in training, so the
    moving statistics are written)."""
    img, W = a(2, 5, 5, 3), a(3, 3, 3, 4)
    y4 = (2, 3, 3, 4)
    conv = {"strides": 1, "padding": "valid", "dilation_rate": 1}
    pool = {"pool_size": 2, "strides": None, "padding": "valid"}
    p2 = (2, 2, 2, 3)
    arg = np.zeros(p2, np.int64)
    c = {"gamma": a(3), "beta": a(3), "moving_mean": a(3), "moving_variance": a(3) ** 2}
    plan = [("dense", a(5, 3), a(3), "relu", 0.0)]
    netplan = [("conv2d", W, a(4), 1, "valid", 1, "relu", 0.0)]
    return [
        ("conv2d_forward", {"x": img, "W": W, "b": a(4), **conv, "out": a(*y4), "z": a(*y4)}),
        ("conv2d_backward", {"dy": a(*y4), "x": img, "W": W, "z": a(*y4), "y": None, **conv,
                             "activation": "relu", "dW": a(3, 3, 3, 4), "db": a(4),
                             "dx": a(2, 5, 5, 3), "dz": a(*y4)}),
        ("max_pool2d_forward", {"x": img, **pool, "out": a(*p2), "argmax": arg}),
        ("max_pool2d_backward", {"dy": a(*p2), "x": img, "argmax": arg, **pool,
                                 "dx": a(2, 5, 5, 3)}),
        ("avg_pool2d_forward", {"x": img, **pool, "out": a(*p2)}),
        ("avg_pool2d_backward", {"dy": a(*p2), "x": img, **pool, "dx": a(2, 5, 5, 3)}),
        ("global_avg_pool2d_forward", {"x": img, "out": a(2, 3)}),
        ("global_avg_pool2d_backward", {"dy": a(2, 3), "x": img, "dx": a(2, 5, 5, 3)}),
        ("batch_norm_forward", {"x": a(4, 3), **c, "training": True, "out": a(4, 3),
                                "xhat": a(4, 3), "inv_std": a(3)}),
        ("batch_norm_backward", {"dy": a(4, 3), "xhat": a(4, 3), "gamma": a(3),
                                 "inv_std": a(3) ** 2, "dx": a(4, 3), "dgamma": a(3),
                                 "dbeta": a(3)}),
        ("MLPPlan", {"layers": plan, "n_features": 5, "dtype": np.dtype(dt).name, "x": a(4, 5),
                     "out": a(4, 3)}),
        ("NetPlan", {"layers": netplan, "input_shape": (5, 5, 3), "dtype": np.dtype(dt).name,
                     "x": img, "out": a(2, 3, 3, 4)}),
    ]


def _run(fn, kwargs):
    """ops.<fn>(**kwargs); a plan's outputs are forward's, so it is built and run."""
    if fn in ("MLPPlan", "NetPlan"):
        kw = dict(kwargs)
        x, out = kw.pop("x"), kw.pop("out")
        return getattr(ops, fn)(**kw).forward(x, out=out)
    return getattr(ops, fn)(**kwargs)


OUTPUT_ARGS = {"gemm": ["out"], "activation_forward": ["out"], "activation_backward": ["out"],
               "dense_forward": ["out", "z"], "dense_backward": ["dW", "db", "dx", "dz"],
               "dropout_forward": ["out"], "dropout_backward": ["out"], "argmax_rows": ["out"],
               "column_sums": ["out"], "sgd_update": ["params", "velocity"],
               "adam_update": ["params", "m", "v"], "rmsprop_update": ["params", "sq", "velocity"],
               "adagrad_update": ["params", "acc"], "clip_grad_norm": ["grads"],
               "conv2d_forward": ["out", "z"], "conv2d_backward": ["dW", "db", "dx", "dz"],
               "max_pool2d_forward": ["out", "argmax"], "max_pool2d_backward": ["dx"],
               "avg_pool2d_forward": ["out"], "avg_pool2d_backward": ["dx"],
               "global_avg_pool2d_forward": ["out"], "global_avg_pool2d_backward": ["dx"],
               "batch_norm_forward": ["out", "xhat", "inv_std", "moving_mean",
                                      "moving_variance"],
               "batch_norm_backward": ["dx", "dgamma", "dbeta"], "MLPPlan": ["out"],
               "NetPlan": ["out"],
               **{f: ["grad"] for f in ("softmax_cross_entropy", "binary_cross_entropy", "mse",
                                         "huber")}}


def test_every_backend_function_is_listed():
    assert set(OUTPUT_ARGS) | {"accuracy"} == set(reference.__all__)  # accuracy: no output
    assert dict(_outputs(np.float32)).keys() == OUTPUT_ARGS.keys()


@pytest.mark.parametrize("fn,name", [(f, n) for f, names in OUTPUT_ARGS.items() for n in names])
@pytest.mark.parametrize("convert", [swapped, unaligned])
def test_outputs_must_be_native_and_aligned(backend, fn, name, convert, dtype):
    kwargs = dict(_outputs(dtype))[fn]
    native = kwargs[name]
    kwargs[name] = convert(native)
    before = kwargs[name].copy()
    where = f"{fn}.forward" if fn in ("MLPPlan", "NetPlan") else fn
    want = f"{where}: {name} must be an aligned native-byte-order {native.dtype.name} array, got "
    if convert is swapped:
        exc, want = TypeError, want + f"dtype {kwargs[name].dtype.str}"
    else:
        exc = ValueError
        want += f"one whose data or strides are not multiples of {native.dtype.alignment} bytes"
    with pytest.raises(exc, match="^" + re.escape(want) + "$"):
        _run(fn, kwargs)
    np.testing.assert_array_equal(kwargs[name], before)  # rejected before anything was written


@pytest.mark.parametrize("name", ["W", "b"])
@pytest.mark.parametrize("convert", [swapped, unaligned])
def test_plan_weights_must_be_native_and_aligned(backend, name, convert, dtype):
    """MLPPlan keeps its W and b and reads them in place at every forward (later changes are
    seen), so it cannot copy a byte-swapped or unaligned one as it copies forward's x: such a
    weight is refused at construction, with the same type and message on both backends."""
    kwargs = dict(_outputs(dtype))["MLPPlan"]
    _, W, b, act, alpha = kwargs["layers"][0]
    layer = {"W": W, "b": b}
    layer[name] = convert(layer[name])
    kwargs["layers"] = [("dense", layer["W"], layer["b"], act, alpha)]
    want = (f"MLPPlan: layers[0] {name} must be C-contiguous, aligned and in native byte order: "
            f"the plan reads it in place, so later changes to its values (set_weights, "
            f"training) are seen")
    with pytest.raises(ValueError, match="^" + re.escape(want) + "$"):
        _run("MLPPlan", kwargs)


def test_nnfast_matmul_takes_an_unaligned_out(backend):
    a, b = np.ones((3, 4), np.float32), np.ones((4, 2), np.float32)
    out = unaligned(np.zeros((3, 2), np.float32))
    assert ops.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, np.full((3, 2), 4.0, np.float32))


# ---- hyperparameters that pass in double but not once rounded to float32 ----------------------
ONE_MINUS = 1 - 1e-9  # < 1, but 1.0 in float32
BAD_F32 = [
    ("adam_update", "eps", 1e-50, "0.0", "> 0"),
    ("rmsprop_update", "eps", 1e-50, "0.0", "> 0"),
    ("adagrad_update", "eps", 1e-46, "0.0", "> 0"),
    ("adam_update", "beta1", ONE_MINUS, "1.0", "in [0, 1)"),
    ("adam_update", "beta2", ONE_MINUS, "1.0", "in [0, 1)"),
    ("rmsprop_update", "rho", ONE_MINUS, "1.0", "in [0, 1)"),
    ("rmsprop_update", "momentum", ONE_MINUS, "1.0", "in [0, 1)"),
    ("sgd_update", "momentum", ONE_MINUS, "1.0", "in [0, 1)"),
    ("huber", "delta", 1e39, "inf", "in (0, inf)"),
    ("huber", "delta", 1e-50, "0.0", "in (0, inf)"),
]


@pytest.mark.parametrize("fn,name,value,rounded,interval", BAD_F32)
def test_hyperparameters_must_survive_float32(backend, fn, name, value, rounded, interval,
                                              dtype):
    kwargs = dict(_outputs(dtype))[fn]
    kwargs[name] = value
    call = getattr(ops, fn)
    if dtype == np.float64:  # representable: accepted
        call(**kwargs)
        return
    want = (f"{fn}: {name}={value!r} is out of range for float32: it rounds to {rounded}, "
            f"and {name} must be {interval}")
    with pytest.raises(ValueError, match="^" + re.escape(want) + "$"):
        call(**kwargs)


def test_smallest_float32_eps_is_accepted(backend):
    kwargs = dict(_outputs(np.float32))["adam_update"]
    ops.adam_update(**kwargs, eps=1e-45)  # rounds to the smallest denormal, still > 0
    assert np.isfinite(kwargs["params"]).all()


def test_gemm_beta_that_rounds_to_zero_overwrites(backend, dtype):
    """beta reaches the kernel in the operands' dtype: 1e-50 is 0 in float32, so out is
    overwritten (its NaN ignored) as for beta=0; in float64 it scales the NaN."""
    a, b = np.ones((3, 4), dtype), np.ones((4, 2), dtype)
    out = ops.gemm(a, b, out=np.full((3, 2), np.nan, dtype), beta=1e-50)
    want = 4.0 if dtype == np.float32 else np.nan
    np.testing.assert_array_equal(out, np.full((3, 2), want, dtype))


def test_dropout_rate_just_below_one_is_the_same_on_both_backends(dtype):
    """rate stays in double in both (never cast to float): 1 - 2**-40 keeps ~2**-40 of x,
    scaled by T(2**40)."""
    x = np.ones(100_000, dtype)
    rate = 1 - 2.0**-40
    got = [be.dropout_forward(x, rate, 3, 4) for be in BOTH]
    for g in got:
        assert np.isfinite(g).all() and set(np.unique(g)) <= {0.0, dtype(2.0**40)}
        np.testing.assert_array_equal(g, got[0])
