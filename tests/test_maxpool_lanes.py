"""Max pooling's whole-window kernel (csrc/gemm/maxpool_simd.h): lanes along the channels,
the last chunk masked. It must give the reference's values and argmax bit for bit: the first
NaN of a window, else its first largest value (a later equal value, -0.0 after 0.0 included,
never replaces it). Each case runs on every kernel path the CPU has (subprocesses with
NNFAST_ISA); the generic path is the scalar loop the kernel stands in for."""
import pytest
from isa_runs import ISAS, run_on_isa

pytest.importorskip("nnfast.backends.compiled", reason="compiled extension not built")

# (N, H, W, C, pool, strides, padding): channels on both sides of one and two vectors of
# every path (4, 8, 16 lanes), windows wholly inside the image next to partial ones
# ("same"), strides below, at and above the window, windows over 64 taps (scalar loop)
SHAPES = [(2, 8, 8, 6, 2, None, "valid"), (1, 5, 7, 1, 2, None, "same"),
          (2, 6, 9, 3, 3, 1, "same"), (1, 9, 8, 5, 3, 2, "valid"),
          (2, 4, 6, 8, 2, None, "valid"), (1, 7, 7, 15, 2, 1, "same"),
          (1, 6, 6, 16, 2, None, "valid"), (2, 5, 5, 17, 3, 2, "same"),
          (1, 4, 10, 33, (1, 3), (2, 2), "valid"), (1, 9, 9, 4, 9, 1, "valid"),
          (1, 3, 3, 2, 1, None, "valid")]

_SCRIPT = r"""
import json, sys, numpy as np, nnfast
from nnfast.backends import compiled as C, reference as R
shapes = json.loads(sys.argv[1])
rng = np.random.default_rng(11)
out = {"y_same": 0, "arg_same": 0, "n": 0, "path": nnfast.info()["kernel_path"]}
for n, h, w, c, p, s, pad in shapes:
    for dt in (np.float32, np.float64):
        for fill in ("ties", "special"):
            x = np.round(rng.standard_normal((n, h, w, c)) * 2).astype(dt)   # many ties
            if fill == "special":   # NaNs, infinities and signed zeros at random places
                pick = rng.random(x.shape)
                x[pick < 0.1] = np.nan
                x[(pick >= 0.1) & (pick < 0.15)] = np.inf
                x[(pick >= 0.15) & (pick < 0.2)] = -np.inf
                x[(pick >= 0.2) & (pick < 0.3)] = -0.0
                x[(pick >= 0.3) & (pick < 0.4)] = 0.0
            for nt in (1, 2):
                nnfast.set_num_threads(nt)
                yc, ac = C.max_pool2d_forward(x, p, s, pad)
                yr, ar = R.max_pool2d_forward(x, p, s, pad)
                out["n"] += 1
                out["y_same"] += yc.tobytes() == yr.tobytes()
                out["arg_same"] += np.array_equal(ac, ar)
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ISAS)
def test_max_pool_matches_the_reference_bit_for_bit_on_every_kernel_path(isa):
    got = run_on_isa(isa, _SCRIPT, SHAPES)
    n = len(SHAPES) * 2 * 2 * 2
    assert got == {"y_same": n, "arg_same": n, "n": n, "path": isa}
