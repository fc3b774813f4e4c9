"""Folding constants: a Constant node, or Cast / Transpose / Identity / Reshape / Squeeze /
Unsqueeze of constants, evaluated once into the reader's ``consts``. Only the nodes the chosen
output depends on are folded (_import.py picks them), and a node numpy would raise on (a
repeated Transpose axis, a Squeeze of a dimension that is not 1, a Reshape whose sizes do not
fit) is refused with the reader's ValueError naming the file and the node."""
from __future__ import annotations

import math

import numpy as np

FOLD = ("Cast", "Transpose", "Identity", "Reshape", "Squeeze", "Unsqueeze")
CAST_TO = {1: np.float32, 11: np.float64, 7: np.int64, 6: np.int32, 10: np.float16}


def attrs(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Folder:
    """Mixed into the reader, which provides ``onnx``, ``f`` (OnnxFile), ``consts``, ``err``."""

    def _fold(self, node) -> bool:
        """Evaluate a Constant node or a foldable op of constants; False if it is dynamic.
        Anything numpy would raise on is refused first with a ValueError naming the node."""
        a = attrs(self.onnx, node)
        if node.op_type == "Constant":
            if "value" in a:
                val = self.f.tensor(node.attribute[0].t, node)
            elif "value_float" in a or "value_floats" in a:
                val = np.asarray(a.get("value_float", a.get("value_floats")), np.float32)
            elif "value_int" in a or "value_ints" in a:
                val = np.asarray(a.get("value_int", a.get("value_ints")), np.int64)
            else:
                raise self.err(f"constant of kind {sorted(a)} is not supported", node)
            self.consts[node.output[0]] = val
            return True
        ins = [i for i in node.input if i]
        if node.op_type not in FOLD or not ins or not all(i in self.consts for i in ins):
            return False
        try:
            self.consts[node.output[0]] = self._fold_op(node, a, ins)
        except (ValueError, TypeError, IndexError) as exc:
            if str(exc).startswith("from_onnx: "):
                raise
            raise self.err(f"{node.op_type} of a constant fails: {exc}", node) from None
        return True

    def _fold_op(self, node, a: dict, ins: list) -> np.ndarray:
        x = self.consts[ins[0]]
        what = f"{node.op_type} of a constant of shape {x.shape}"
        if node.op_type == "Cast":
            if a.get("to") not in CAST_TO:
                raise self.err(f"Cast of a constant to ONNX type {a.get('to')}", node)
            return x.astype(CAST_TO[a["to"]])
        if node.op_type == "Transpose":
            perm = a.get("perm")
            if perm is not None and sorted(perm) != list(range(x.ndim)):
                raise self.err(f"{what} with perm={list(perm)}: perm must be a permutation "
                               f"of {list(range(x.ndim))}", node)
            return np.transpose(x, perm)
        if node.op_type == "Identity":
            return x
        if node.op_type == "Reshape":
            shape = [x.shape[i] if s == 0 and not a.get("allowzero") and i < x.ndim
                     else int(s) for i, s in enumerate(np.ravel(self.consts[ins[1]]))]
            known = math.prod(s for s in shape if s != -1)
            if shape.count(-1) > 1 or any(s < -1 for s in shape) or (
                    x.size % known if known else True) or (-1 not in shape
                                                           and known != x.size):
                raise self.err(f"{what} to {shape}: {x.size} elements do not fit", node)
            return x.reshape(shape)
        # Squeeze / Unsqueeze: axes as attribute (< 13) or second input
        axes = a.get("axes") if len(ins) < 2 else self.consts[ins[1]]
        axes = None if axes is None else tuple(int(v) for v in np.ravel(axes))
        if node.op_type == "Squeeze" and axes is not None:
            bad = [k for k in axes if not -x.ndim <= k < x.ndim or x.shape[k] != 1]
            if bad:
                raise self.err(f"{what} at axes {list(axes)}: axes {bad} are not dimensions "
                               f"of size 1", node)
        return np.squeeze(x, axes) if node.op_type == "Squeeze" else np.expand_dims(x, axes)
