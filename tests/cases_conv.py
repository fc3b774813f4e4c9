"""Comparison cases for the convolution, pooling and batch-norm kernels (issue 18), added to
tests/cases.py's CASES: odd sizes (kernel 1, 3, 5; stride 1, 2; dilation 1, 2; "same" and
"valid"; 1 and 3 channels; batch 0 and 1; images off every block size) and one shape large
enough that 2 threads really split the work (tests/test_compare.py checks 1 vs 2 threads bit
for bit)."""
from __future__ import annotations

import numpy as np
from cases import Case, Gen

# (N, H, W, C, K, F, stride, dilation, padding)
CONV_SHAPES = [
    (1, 5, 7, 1, 1, 2, 1, 1, "valid"), (1, 5, 7, 1, 1, 3, 2, 1, "same"),
    (2, 7, 6, 3, 3, 4, 1, 1, "valid"), (2, 7, 6, 3, 3, 4, 1, 1, "same"),
    (1, 9, 8, 3, 3, 5, 2, 1, "same"), (3, 9, 11, 1, 3, 2, 1, 2, "same"),
    (2, 11, 9, 3, 3, 3, 2, 2, "valid"), (1, 8, 9, 1, 5, 6, 1, 1, "same"),
    (2, 13, 7, 3, 5, 4, 2, 1, "valid"), (0, 6, 6, 3, 3, 4, 1, 1, "same"),
    (1, 3, 3, 2, 5, 2, 1, 1, "same"), (8, 28, 28, 3, 5, 8, 1, 1, "same"),
    # several im2col blocks (whole images per ~1M-element block, conv.c's COL_BLOCK): 5 + 5 + 2
    # images; the 1x1 kernel reads x in place, in blocks of 2 + 1 images
    (12, 32, 32, 8, 5, 4, 1, 1, "same"), (3, 64, 64, 128, 1, 2, 1, 1, "valid"),
    # wide outputs take the explicit im2col + GEMM path (narrow ones, the rest here, the
    # implicit GEMM: conv.c conv_implicit); Kc = 3*3*130 = 1170 taps overflow one packed panel,
    # so the implicit GEMM's panels cover K blocks of taps (pack_taps tap by tap)
    (2, 9, 8, 3, 3, 70, 1, 1, "same"), (1, 7, 9, 2, 3, 30, 2, 1, "same"),
    (2, 6, 7, 130, 3, 5, 1, 1, "same"), (1, 9, 9, 130, 3, 3, 2, 2, "valid"),
]
CONV_TOL = ({"float32": 1e-4, "float64": 1e-11}, {"float32": 1e-4, "float64": 1e-11})
CONV_ACTS = (("identity", 0.0), ("relu", 0.0), ("elu", 1.3), ("softmax", 0.0))


def _conv_inputs(g: Gen, shape):
    n, h, w, c, k, f, s, d, pad = shape
    x = g.array((n, h, w, c))
    W = g.array((k, k, c, f)) / g.dtype.type(np.sqrt(k * k * c))
    b = g.array((f,))
    return x, W, b, dict(strides=s, padding=pad, dilation_rate=d)


def _make_conv_fwd(act, alpha):
    def make(g: Gen, shape):
        x, W, b, geo = _conv_inputs(g, shape)
        return (x, W, b), dict(geo, activation=act, alpha=alpha)
    return make


def _dy(g: Gen, shape):
    """dy scaled so dW (a sum over N*OH*OW pixels) stays ~1 and atol keeps its meaning."""
    return g.array(shape) / g.dtype.type(np.sqrt(max(shape[0] * shape[1] * shape[2], 1)))


def _make_conv_bwd(act, alpha):
    def make(g: Gen, shape):
        from nnfast.backends import reference as ref
        x, W, b, geo = _conv_inputs(g, shape)
        z = np.empty(ref.conv2d_forward(x, W, b, **geo).shape, g.dtype)
        y = ref.conv2d_forward(x, W, b, activation=act, alpha=alpha, z=z, **geo)
        dy = _dy(g, y.shape)
        return (dy, x, W, z, y), dict(geo, activation=act, alpha=alpha)
    return make


def _make_conv_bwd_acc(g: Gen, shape):
    x, W, b, geo = _conv_inputs(g, shape)
    from nnfast.backends import reference as ref
    dy = _dy(g, ref.conv2d_forward(x, W, **geo).shape)
    return (dy, x, W, None, None), dict(geo, dW=g.contiguous(W.shape), db=g.contiguous(b.shape),
                                        accumulate=True, need_dx=False)


# (N, H, W, C, pool, stride or None, padding)
POOL_SHAPES = [
    (1, 4, 4, 1, 2, None, "valid"), (2, 5, 7, 3, 2, None, "valid"), (2, 5, 7, 3, 2, None, "same"),
    (1, 7, 5, 1, 3, 2, "same"), (2, 7, 9, 3, 3, 1, "same"), (1, 9, 8, 3, 3, 2, "valid"),
    (0, 4, 4, 2, 2, None, "same"), (3, 6, 6, 2, 5, 1, "same"), (8, 28, 28, 6, 2, None, "valid"),
]


def _pool_x(g: Gen, shape):
    n, h, w, c, p, s, pad = shape
    x = g.array((n, h, w, c))
    x[...] = np.round(x * 4)  # ties: the first maximum must win on both backends
    return x, dict(pool_size=p, strides=s, padding=pad)


def _make_pool_fwd(g: Gen, shape):
    x, geo = _pool_x(g, shape)
    return (x,), geo


def _make_maxpool_bwd(g: Gen, shape):
    from nnfast.backends import reference as ref
    x, geo = _pool_x(g, shape)
    y, arg = ref.max_pool2d_forward(x, **geo)
    return (g.array(y.shape), x, arg), geo


def _make_avgpool_bwd(g: Gen, shape):
    from nnfast.backends import reference as ref
    x, geo = _pool_x(g, shape)
    return (g.array(ref.avg_pool2d_forward(x, **geo).shape), x), geo


GAP_SHAPES = [(0, 3, 3, 2), (1, 1, 1, 1), (2, 5, 7, 3), (3, 8, 8, 300), (16, 28, 28, 8)]


def _make_gap_fwd(g: Gen, shape):
    return (g.array(shape),), {}


def _make_gap_bwd(g: Gen, shape):
    return (g.array((shape[0], shape[3])), g.array(shape)), {}


BN_SHAPES = [(3, 0), (1, 1), (2, 3), (5, 7), (257, 3), (4, 5, 6, 3), (2, 1, 1, 1), (64, 14, 14, 6),
             (1000, 17)]


def _bn_params(g: Gen, c):
    return (g.contiguous((c,), 0.5, 1.5), g.contiguous((c,)), g.contiguous((c,)),
            g.contiguous((c,), 0.5, 2.0))


def _make_bn_train(g: Gen, shape):
    gamma, beta, mm, mv = _bn_params(g, shape[-1])
    return (g.array(shape, -2, 3), gamma, beta, mm, mv, True), dict(momentum=0.9, epsilon=1e-3)


def _make_bn_train_plain(g: Gen, shape):
    _, _, mm, mv = _bn_params(g, shape[-1])
    return (g.array(shape), None, None, mm, mv, True), {}


def _make_bn_infer(g: Gen, shape):
    gamma, beta, mm, mv = _bn_params(g, shape[-1])
    return (g.array(shape), gamma, beta, mm, mv), dict(epsilon=1e-2)


def _make_bn_bwd(g: Gen, shape):
    from nnfast.backends import reference as ref
    gamma, beta, mm, mv = _bn_params(g, shape[-1])
    _, xhat, inv = ref.batch_norm_forward(g.array(shape), gamma, beta, mm, mv, True)
    return (g.array(shape), xhat, gamma, inv), {}


def _make_bn_bwd_acc(g: Gen, shape):
    from nnfast.backends import reference as ref
    _, _, mm, mv = _bn_params(g, shape[-1])
    _, xhat, inv = ref.batch_norm_forward(g.array(shape), None, None, mm, mv, True)
    c = shape[-1]
    return (g.array(shape), xhat, None, inv), dict(dgamma=g.contiguous((c,)),
                                                  dbeta=g.contiguous((c,)), accumulate=True)


BN_MOVING = ("moving_mean", "moving_variance")
BN_TOL = ({"float32": 2e-5, "float64": 1e-12}, {"float32": 2e-5, "float64": 1e-12})

# ---- NetPlan(layers, input_shape, dtype).forward(x) (more: tests/test_plan_conv.py)
# (N, H, W, C, kernel, stride, dilation, padding): conv(act) - max pool - batch norm - conv -
# avg pool (same) - activation(act) - flatten - dense(softmax)
NET_SHAPES = [(0, 6, 6, 1, 3, 1, 1, "same"), (1, 5, 7, 1, 1, 1, 1, "valid"),
              (2, 9, 8, 3, 3, 2, 1, "same"), (3, 11, 9, 1, 3, 1, 2, "same"),
              (5, 12, 12, 3, 5, 1, 1, "valid"), (130, 16, 16, 2, 3, 1, 1, "same")]


def _make_netplan(act, alpha):
    def make(g: Gen, shape):
        n, h, w, c, k, s, d, pad = shape
        x = g.array((n, h, w, c))
        W1 = g.contiguous((k, k, c, 4)) / g.dtype.type(np.sqrt(k * k * c))
        W2 = g.contiguous((3, 3, 4, 5)) / g.dtype.type(6)
        layers = [("conv2d", W1, g.contiguous((4,)), s, pad, d, act, alpha),
                  ("max_pool2d", 2, None, "same"), ("batch_norm", *_bn_params(g, 4), 1e-3),
                  ("conv2d", W2, None, 1, "same", 1, "identity", 0.0),
                  ("avg_pool2d", 3, 2, "same"), ("activation", act, alpha)]
        probe = _net_shape(layers, (h, w, c))
        feats = int(np.prod(probe))
        layers += [("reshape", (feats,)),
                   ("dense", g.contiguous((feats, 3)), g.contiguous((3,)), "softmax", 0.0)]
        return (x, layers, (h, w, c)), {}
    return make


def _net_shape(layers, shape):
    from nnfast.backends import reference as ref
    return ref.NetPlan(layers, shape, "float64" if layers[0][1].dtype == np.float64
                       else "float32").output_shape


def _call_netplan(cls, args, kwargs):
    x, layers, shape = args
    return cls(layers, shape, x.dtype.name).forward(x)

CONV_CASES = [
    *[Case("conv2d_forward", _make_conv_fwd(a, al), CONV_SHAPES, *CONV_TOL, id=a)
      for a, al in CONV_ACTS],
    *[Case("conv2d_backward", _make_conv_bwd(a, al), CONV_SHAPES, *CONV_TOL, id=a)
      for a, al in CONV_ACTS],
    Case("conv2d_backward", _make_conv_bwd_acc, CONV_SHAPES, *CONV_TOL, inplace=("dW", "db"),
         id="accumulate"),
    Case("max_pool2d_forward", _make_pool_fwd, POOL_SHAPES),
    Case("max_pool2d_backward", _make_maxpool_bwd, POOL_SHAPES),
    Case("avg_pool2d_forward", _make_pool_fwd, POOL_SHAPES),
    Case("avg_pool2d_backward", _make_avgpool_bwd, POOL_SHAPES),
    Case("global_avg_pool2d_forward", _make_gap_fwd, GAP_SHAPES),
    Case("global_avg_pool2d_backward", _make_gap_bwd, GAP_SHAPES),
    Case("batch_norm_forward", _make_bn_train, BN_SHAPES, *BN_TOL, inplace=BN_MOVING, id="train"),
    Case("batch_norm_forward", _make_bn_train_plain, BN_SHAPES, *BN_TOL, inplace=BN_MOVING,
         id="train_no_affine"),
    Case("batch_norm_forward", _make_bn_infer, BN_SHAPES + [(0, 3)], *BN_TOL, id="infer"),
    Case("batch_norm_backward", _make_bn_bwd, BN_SHAPES, *BN_TOL),
    Case("batch_norm_backward", _make_bn_bwd_acc, BN_SHAPES, *BN_TOL,
         inplace=("dgamma", "dbeta"), id="accumulate"),
    *[Case("NetPlan", _make_netplan(a, al), NET_SHAPES, *CONV_TOL, id=a, call=_call_netplan)
      for a, al in CONV_ACTS if a != "softmax"],
    Case("NetPlan", _make_netplan("gelu", 0.0), NET_SHAPES, *CONV_TOL, id="gelu",
         call=_call_netplan),
]
