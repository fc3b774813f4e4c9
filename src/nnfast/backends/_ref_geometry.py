"""Window geometry shared by the reference convolution and pooling ops and the layers: Keras 3's
padding rules for channels-last images. nnfast/_native/_conv.pxi spells the same rules (and
messages) in Cython, since the extension imports nothing of nnfast.

"valid": no padding, OH = (H - EH) // S + 1 with EH = (KH - 1) * DH + 1 the dilated extent; the
window must fit (H >= EH). "same": OH = ceil(H / S), total padding
max((OH - 1) * S + EH - H, 0), its smaller half on top (pad_top = total // 2), as Keras/TF.
"""
from __future__ import annotations

import operator

import numpy as np

__all__: list[str] = []


def pair(fn: str, name: str, value) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1 (Keras' kernel_size / strides / dilation_rate)."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, (bool, np.bool_)) for v in items):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    try:
        a, b = (operator.index(v) for v in items)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{fn}: {name} must be positive, got {value!r}")
    return a, b


def padding_mode(fn: str, padding) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{fn}: padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def geometry(fn: str, hw: tuple, kernel: tuple, strides, padding, dilation=1) -> dict:
    """Output size and padding of a window op over an (H, W) image; ValueError when the output
    would have no pixels. Returns dict(OH, OW, PT, PL, PB, PR, SH, SW, DH, DW, KH, KW)."""
    kh, kw = kernel
    sh, sw = pair(fn, "strides", strides)
    dh, dw = pair(fn, "dilation_rate", dilation)
    mode = padding_mode(fn, padding)
    h, w = hw
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if h == 0 or w == 0:
        raise ValueError(f"{fn}: the {h}x{w} input has no pixels, so the output would have none")
    if mode == "valid":
        if h < eh or w < ew:
            # the extent only where dilation makes it differ (never for pooling)
            ext = "" if dh == 1 and dw == 1 else f" (dilated extent {eh}x{ew})"
            raise ValueError(f"{fn}: the {kh}x{kw} window{ext} is larger than the {h}x{w} "
                             f"input with padding 'valid'; the output would have no pixels")
        oh, ow = (h - eh) // sh + 1, (w - ew) // sw + 1
        pt = pl = pb = pr = 0
    else:
        oh, ow = -(-h // sh), -(-w // sw)
        th, tw = max((oh - 1) * sh + eh - h, 0), max((ow - 1) * sw + ew - w, 0)
        pt, pl = th // 2, tw // 2
        pb, pr = th - pt, tw - pl
    return dict(OH=oh, OW=ow, PT=pt, PL=pl, PB=pb, PR=pr, SH=sh, SW=sw, DH=dh, DW=dw, KH=kh,
                KW=kw)
