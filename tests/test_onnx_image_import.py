"""from_onnx on image graphs not written by nnfast: tf2onnx's padding spellings (auto_pad) are
read; what nnfast cannot hold (channels-first graphs such as PyTorch's, paddings other than
"valid" and Keras' "same", grouped convolutions, ceil_mode, count_include_pad with padding, an
arbitrary Transpose) is refused with a ValueError naming the file, the node and why."""
import re

import numpy as np
import pytest

import nnfast
from nnfast.layers import Activation, Conv2D

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
NHWC = ("N", 6, 6, 2)
TO_FIRST = helper.make_node("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2])


def _save(tmp_path, nodes, in_dims=NHWC, out_dims=("N", 3, 4, 4), inits=()):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(3, 2, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "b"), *inits]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_dims))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    return path


def _conv(x="t", y="c", **attrs):
    return helper.make_node("Conv", [x, "W", "b"], [y], name="conv", **attrs)


TO_LAST = helper.make_node("Transpose", ["c"], ["y"], name="to_nhwc", perm=[0, 2, 3, 1])


def _refused(path, node, msg):
    where = f" {node}" if node else ""
    with pytest.raises(ValueError, match=f"^from_onnx: {re.escape(repr(path))}{where}: {msg}"):
        nnfast.from_onnx(path)


@pytest.mark.parametrize("auto_pad,pads,padding", [
    ("SAME_UPPER", None, "same"), ("VALID", None, "valid"), ("NOTSET", [1, 1, 1, 1], "same"),
    ("SAME_LOWER", None, "same")])   # 3x3, stride 1: the total padding is even, both agree
def test_tf2onnx_padding_spellings(tmp_path, auto_pad, pads, padding):
    attrs = {"auto_pad": auto_pad} | ({"pads": pads} if pads else {})
    side = 6 if padding == "same" else 4
    path = _save(tmp_path, [TO_FIRST, _conv(**attrs), TO_LAST], out_dims=("N", side, side, 3))
    m = nnfast.from_onnx(path)
    assert m.layers[0].padding == padding and m.output_shape == (side, side, 3)
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime (test extra) not installed")
    x = np.random.default_rng(1).normal(size=(3, *NHWC[1:])).astype(np.float32)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(m.predict(x), got, rtol=1e-5, atol=1e-5)


def test_same_lower_with_an_odd_padding_is_refused(tmp_path):
    # stride 2 over 6 pixels, 3x3: one padding pixel per axis, SAME_LOWER puts it on top
    path = _save(tmp_path, [TO_FIRST, _conv(auto_pad="SAME_LOWER", strides=[2, 2]), TO_LAST],
                 out_dims=("N", 3, 3, 3))
    _refused(path, r"node 'conv' \(Conv\)", re.escape(
        "pads [1, 1, 0, 0] (top, left, bottom, right) are neither 'valid' (none) nor Keras' "
        "'same' [0, 0, 1, 1] for the 6x6 input, the only paddings nnfast has"))


def test_a_channels_first_graph_is_refused_saying_why(tmp_path):
    # PyTorch's layout: the input itself is (N, C, H, W), Conv reads it directly
    path = _save(tmp_path, [_conv(x="x", y="y")], in_dims=("N", 2, 6, 6))
    _refused(path, r"node 'conv' \(Conv\)", re.escape(
        "Conv reads a channels-last value: nnfast models take channels-last images (N, H, W, "
        "C) and read Conv only after a Transpose perm=[0, 3, 1, 2] (as nnfast's to_onnx and "
        "tf2onnx write); a graph with a channels-first input (PyTorch's layout) is not "
        "supported"))


def test_pytorch_cnn_export_is_refused_at_its_first_conv(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(32, 3)).eval()
    path = str(tmp_path / "t.onnx")
    torch.onnx.export(net, (torch.zeros(1, 1, 6, 6),), path, dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    with pytest.raises(ValueError, match=r"\(Conv\): Conv reads a channels-last value: .* a "
                                         r"graph with a channels-first input \(PyTorch's "
                                         r"layout\) is not supported$"):
        nnfast.from_onnx(path)


def test_flatten_of_a_channels_first_value_is_refused(tmp_path):
    flat = helper.make_node("Flatten", ["c"], ["y"], name="flat", axis=1)
    path = _save(tmp_path, [TO_FIRST, _conv(), flat], out_dims=("N", 48))
    _refused(path, r"node 'flat' \(Flatten\)", re.escape(
        "Flatten reads the element order of a channels-first (NCHW) value of per-sample shape "
        "(4, 4, 3) (nnfast's H, W, C); nnfast's layers read channels-last order, so nnfast "
        "expects a Transpose perm=[0, 2, 3, 1] before it"))


def test_a_channels_first_output_is_refused(tmp_path):
    path = _save(tmp_path, [TO_FIRST, _conv(y="y")], out_dims=("N", 3, 4, 4))
    _refused(path, "", re.escape("the graph output 'y' is a channels-first (NCHW) image of 3 "
                                 "channels (per-sample shape (3, 4, 4)); nnfast models output "
                                 "channels-last (N, H, W, C) images, so nnfast expects a "
                                 "Transpose perm=[0, 2, 3, 1] before the output"))


def test_a_one_channel_channels_first_output_is_refused_too(tmp_path):
    # one channel: the NCHW and NHWC orders coincide, but the graph declares (N, 1, 4, 4) and
    # a model would output (N, 4, 4, 1) (a break-test finding: it was accepted)
    one = numpy_helper.from_array(
        np.random.default_rng(2).normal(size=(1, 2, 3, 3)).astype(np.float32), "W1")
    conv = helper.make_node("Conv", ["t", "W1"], ["y"], name="conv")
    path = _save(tmp_path, [TO_FIRST, conv], out_dims=("N", 1, 4, 4), inits=[one])
    _refused(path, "", re.escape("the graph output 'y' is a channels-first (NCHW) image of 1 "
                                 "channels (per-sample shape (1, 4, 4))"))


@pytest.mark.parametrize("node,msg", [
    (_conv(group=2), "group=2: nnfast's Conv2D is a full convolution (group 1)"),
    (_conv(strides=[0, 1]), "Conv: strides must be positive, got (0, 1)"),
    (_conv(pads=[1, 0, 1, 0]), "pads [1, 0, 1, 0] (top, left, bottom, right) are neither"),
    (_conv(strides=[2, 2], dilations=[2, 2]), "maps to no Conv2D nnfast has: Conv2D: strides > "
                                              "1 cannot be combined with dilation_rate > 1"),
    (helper.make_node("MaxPool", ["t"], ["c"], name="conv", kernel_shape=[2, 2], ceil_mode=1),
     "ceil_mode=1: nnfast's pooling floors the output size (Keras)"),
    (helper.make_node("AveragePool", ["t"], ["c"], name="conv", kernel_shape=[3, 3],
                      pads=[1, 1, 1, 1], count_include_pad=1),
     "count_include_pad=1 with padding: nnfast divides each window by its pixels inside the "
     "image (count_include_pad=0), as Keras"),
    (helper.make_node("ReduceMean", ["t"], ["c"], name="conv", axes=[2, 3]),
     "ReduceMean over axes [2, 3] keepdims=1 of per-sample shape (6, 6, 2): nnfast maps only "
     "the mean over the pixels, keepdims=0"),
])
def test_what_nnfast_cannot_hold_is_refused(tmp_path, node, msg):
    path = _save(tmp_path, [TO_FIRST, node, TO_LAST], out_dims=("N", "h", "w", "c"))
    _refused(path, rf"node 'conv' \({node.op_type}\)", re.escape(msg))


def test_an_arbitrary_transpose_is_refused(tmp_path):
    t = helper.make_node("Transpose", ["x"], ["y"], name="swap", perm=[0, 2, 1, 3])
    path = _save(tmp_path, [t], out_dims=("N", 6, 6, 2))
    _refused(path, r"node 'swap' \(Transpose\)", re.escape(
        "Transpose perm=[0, 2, 1, 3] of a channels-last value of rank 4: nnfast reads only the "
        "layout changes channels last->first [0, 3, 1, 2] and first->last [0, 2, 3, 1]"))


def test_batch_normalization_in_training_mode_is_refused(tmp_path):
    stats = [numpy_helper.from_array(np.ones(2, np.float32), n) for n in "sBmv"]
    bn = helper.make_node("BatchNormalization", ["t", "s", "B", "m", "v"], ["c"], name="bn",
                          training_mode=1)
    path = _save(tmp_path, [TO_FIRST, bn, TO_LAST], out_dims=("N", 6, 6, 2), inits=stats)
    _refused(path, r"node 'bn' \(BatchNormalization\)",
             re.escape("training_mode=1 is not an inference graph"))


def test_an_activation_after_a_conv_is_fused_into_it(tmp_path):
    # Conv2D + Activation exports as Conv, Tanh and reads back as Conv2D(activation="tanh"),
    # which computes the same bits (the same scalar activation)
    m = nnfast.Sequential([Conv2D(3, 3, input_shape=(6, 6, 2)), Activation("tanh")], seed=0)
    m.build()
    m.to_onnx(str(tmp_path / "m.onnx"))
    back = nnfast.from_onnx(str(tmp_path / "m.onnx"))
    assert [type(lay).__name__ for lay in back.layers] == ["Conv2D"]
    assert back.layers[0].activation == "tanh"
    x = np.random.default_rng(2).normal(size=(4, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x), m.predict(x))
