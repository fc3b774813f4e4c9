"""ONNX export and re-import of the image layers (nnfast/onnx/_export_image.py,
_import_image.py): nnfast's predict is the spec. ONNX Runtime runs every exported file and
matches predict within float32 tolerance (rtol 1e-5, atol 1e-5 times the output's largest
magnitude: ONNX Runtime sums a convolution in another order; float64: rtol 1e-9, as ONNX's
float32 epsilon attribute allows); every file passes onnx.checker.check_model(full_check=True)
and runs with batch 1, 5 and 7 (the batch is dynamic); from_onnx gives back the same layers
and weights, so predict is bit-identical."""
import numpy as np
import pytest

import nnfast
from nnfast.backends._ref_geometry import geometry
from nnfast.layers import (
    ACTIVATIONS,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
    Reshape,
)

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx import helper, numpy_helper  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(layers, dtype="float32", seed=0):
    m = nnfast.Sequential(layers, dtype=dtype, seed=seed)
    m.build()
    rng = np.random.default_rng(seed + 1)
    weights = []
    for w, lay_w in zip(m.get_weights(), _weight_kinds(m)):
        # nonzero biases and BatchNormalization statistics, a positive variance
        v = rng.normal(size=w.shape) * (0.5 if lay_w != "kernel" else 1.0)
        weights.append(np.abs(v) + 0.5 if lay_w == "var" else (w if lay_w == "kernel" else v))
    m.set_weights([w.astype(dtype) for w in weights])
    return m


def _weight_kinds(m):
    kinds = []
    for lay in m.layers:
        if isinstance(lay, BatchNormalization):
            kinds += ["gamma"] * lay.scale + ["beta"] * lay.center + ["mean", "var"]
        elif isinstance(lay, (Conv2D, Dense)):
            kinds += ["kernel"] + ["bias"] * lay.use_bias
    return kinds


def _x(shape, n, dtype="float32", seed=3):
    return (np.random.default_rng(seed).normal(size=(n, *shape)) * 2).astype(dtype)


def _config(lay, imported=False):
    c = lay.get_config()
    c.pop("name", None)
    c.pop("input_shape", None)
    if not imported and c.get("padding") == "same":
        # "same" that pads nothing is the same geometry as "valid": ONNX pads [0, 0, 0, 0]
        # read back as "valid" (docs/onnx.md)
        window = c.get("kernel_size", c.get("pool_size"))
        geo = geometry("g", lay.input_shape[:2], window, c["strides"], "same",
                       c.get("dilation_rate", 1))
        if geo["PT"] + geo["PB"] + geo["PL"] + geo["PR"] == 0:
            c["padding"] = "valid"
    if not imported and "target_shape" in c:   # written resolved: [0, *output_shape]
        c["target_shape"] = list(lay.output_shape)
        if len(lay.output_shape) == 1:   # read back as the Flatten it is
            return "Flatten", {}
    return type(lay).__name__, c


def _check(tmp_path, m, batches=(1, 5, 7)):
    """Export, check, run on ONNX Runtime against predict, re-import: the ONNX proto."""
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime (test extra) not installed")
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path)
    onnx.checker.check_model(path, full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    back = nnfast.from_onnx(path)
    assert back.dtype == m.dtype and back.input_shape == m.input_shape
    assert [_config(lay, True) for lay in back.layers] == [_config(lay) for lay in m.layers]
    for n in batches:
        x = _x(m.input_shape, n, m.dtype)
        want = m.predict(x)
        got = sess.run(None, {"input": x})[0]
        assert got.dtype == m.dtype and got.shape == want.shape == (n, *m.output_shape)
        # float64: BatchNormalization's epsilon attribute is a float32 (1e-3 off by 5e-11)
        rtol = 1e-5 if m.dtype == np.float32 else 1e-9
        np.testing.assert_allclose(got, want, rtol=rtol,
                                   atol=rtol * max(1.0, float(np.abs(want).max())))
        np.testing.assert_array_equal(back.predict(x), want)   # same kernels, same weights
    return onnx.load(path)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_conv2d(tmp_path, kernel, strides, padding, channels):
    m = _model([Conv2D(4, kernel, strides=strides, padding=padding, input_shape=(9, 8, channels))])
    proto = _check(tmp_path, m)
    assert [n.op_type for n in proto.graph.node] == ["Transpose", "Conv", "Transpose"]
    W = numpy_helper.to_array(next(t for t in proto.graph.initializer if "kernel" in t.name))
    np.testing.assert_array_equal(W, m.layers[0].W.transpose(3, 2, 0, 1))   # (F, C, kh, kw)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("rate", [2, (1, 2)])
def test_conv2d_dilation_and_no_bias(tmp_path, rate, padding):
    m = _model([Conv2D(3, 3, padding=padding, dilation_rate=rate, use_bias=False,
                       input_shape=(9, 10, 2))])
    proto = _check(tmp_path, m)
    conv = proto.graph.node[1]
    assert len(conv.input) == 2
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["dilations"] == list(m.layers[0].dilation_rate)


def test_same_padding_puts_the_odd_pixel_bottom_right(tmp_path):
    # 8x7 input, 4x4 kernel, stride 3: Keras pads rows 2 (1 top, 1 bottom) and columns
    # 3 (1 left, 2 right)
    m = _model([Conv2D(2, 4, strides=3, padding="same", input_shape=(8, 7, 1))])
    proto = _check(tmp_path, m)
    attrs = {a.name: helper.get_attribute_value(a) for a in proto.graph.node[1].attribute}
    assert attrs["pads"] == [1, 1, 1, 2] and attrs["strides"] == [3, 3]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_conv2d_activations(tmp_path, act):
    alpha = 0.25 if act in ("leaky_relu", "elu") else None
    m = _model([Conv2D(5, 3, activation=act, alpha=alpha, input_shape=(6, 7, 2))])
    proto = _check(tmp_path, m)
    ops = [n.op_type for n in proto.graph.node]
    if act in ("softmax", "log_softmax"):   # over each pixel's channels: axis 1 in NCHW
        assert ops[2] == {"softmax": "Softmax", "log_softmax": "LogSoftmax"}[act]
        assert helper.get_attribute_value(proto.graph.node[2].attribute[0]) == 1


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("pool", [2, 3])
@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_pooling(tmp_path, cls, pool, strides, padding, channels):
    m = _model([cls(pool, strides=strides, padding=padding, input_shape=(8, 7, channels))])
    proto = _check(tmp_path, m)
    node = proto.graph.node[1]
    assert node.op_type == {MaxPooling2D: "MaxPool", AveragePooling2D: "AveragePool"}[cls]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["kernel_shape"] == [pool, pool] and attrs["strides"] == [strides, strides]
    if cls is AveragePooling2D:
        assert attrs["count_include_pad"] == 0


def test_average_pooling_same_divides_by_the_pixels_inside(tmp_path):
    # a constant image: every window's mean is that constant only if the padding is not
    # counted; the corner window of a 3x3 pool over 4x4 stride 1 "same" holds 4 pixels
    m = _model([AveragePooling2D(3, strides=1, padding="same", input_shape=(4, 4, 1))])
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime (test extra) not installed")
    m.to_onnx(str(tmp_path / "m.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.full((1, 4, 4, 1), 2.5, np.float32)
    np.testing.assert_array_equal(sess.run(None, {"input": x})[0], m.predict(x))
    np.testing.assert_array_equal(m.predict(x), x)


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_global_average_pooling(tmp_path, opset):
    m = _model([Conv2D(4, 3, input_shape=(6, 5, 2)), GlobalAveragePooling2D(), Dense(3)])
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime (test extra) not installed")
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path, opset=opset)   # ReduceMean's axes: an attribute below 18, an input from 18
    x = _x((6, 5, 2), 5)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got[0], m.predict(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(nnfast.from_onnx(path).predict(x), m.predict(x))
    # the mean is taken in NCHW, no Transpose back: (N, C) has no layout
    assert [n.op_type for n in onnx.load(path).graph.node] == [
        "Transpose", "Conv", "ReduceMean", "Gemm"]


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_batch_normalization_on_images_and_features(tmp_path, center, scale):
    m = _model([BatchNormalization(center=center, scale=scale, epsilon=1e-2,
                                   input_shape=(5, 4, 3)), Flatten(),
                BatchNormalization(momentum=0.9), Dense(2)])
    if not (center and scale):
        # scale=False / center=False travel as ones / zeros and come back as such
        path = str(tmp_path / "m.onnx")
        m.to_onnx(path)
        back = nnfast.from_onnx(path)
        assert back.layers[0].center and back.layers[0].scale
        x = _x((5, 4, 3), 5)
        np.testing.assert_array_equal(back.predict(x), m.predict(x))
        return
    proto = _check(tmp_path, m)
    assert [n.op_type for n in proto.graph.node] == [
        "Transpose", "BatchNormalization", "Transpose", "Flatten", "BatchNormalization", "Gemm"]
    bn = proto.graph.node[1]
    attrs = {a.name: helper.get_attribute_value(a) for a in bn.attribute}
    assert attrs["epsilon"] == np.float32(1e-2) and attrs["momentum"] == np.float32(0.99)


def test_batch_normalization_epsilon_without_a_short_decimal(tmp_path):
    # ONNX's epsilon is a float32: one with more than 7 significant digits comes back as the
    # shortest decimal of its float32 (docs/onnx.md)
    m = _model([BatchNormalization(epsilon=1.23456789e-4, input_shape=(3, 3, 2))])
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path)
    back = nnfast.from_onnx(path)
    assert back.layers[0].epsilon == 1.2345679e-4
    x = _x((3, 3, 2), 4)
    np.testing.assert_allclose(back.predict(x), m.predict(x), rtol=1e-6, atol=1e-6)


def test_reshape_and_flatten_over_any_rank(tmp_path):
    m = _model([Flatten(input_shape=(2, 3, 4)), Dense(32, "relu"), Reshape((4, 4, 2)),
                Conv2D(3, 2, padding="same"), Reshape((-1, 3)), Flatten(), Dense(2)])
    proto = _check(tmp_path, m)
    assert [n.op_type for n in proto.graph.node] == [
        "Flatten", "Gemm", "Relu", "Reshape", "Transpose", "Conv", "Transpose", "Reshape",
        "Flatten", "Gemm"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_normalization_and_flatten_over_other_ranks(tmp_path, dtype):
    # per-sample (5, 3): a Transpose [0, 2, 1] puts the channels at axis 1; rank 5 flattens
    m = _model([BatchNormalization(input_shape=(5, 3)), Activation("relu"),
                BatchNormalization(), Reshape((5, 1, 3, 1)), Flatten(), Dense(2)], dtype)
    proto = _check(tmp_path, m)
    assert [(n.op_type, [a.ints for a in n.attribute if a.name == "perm"])
            for n in proto.graph.node][:5] == [
        ("Transpose", [[0, 2, 1]]), ("BatchNormalization", []), ("Relu", []),
        ("BatchNormalization", []), ("Transpose", [[0, 2, 1]])]


@pytest.mark.parametrize("filters,side", [(1, 6), (4, 3)])
def test_no_transpose_before_a_flatten_of_one_channel_or_one_pixel(tmp_path, filters, side):
    # (N, 1, H, W) and (N, C, 1, 1) hold their values in nnfast's order already
    m = _model([Conv2D(filters, 3, input_shape=(side, side, 2)), Flatten(), Dense(2),
                Reshape((1, 1, 2)), Conv2D(3, 1), Reshape((3,))])
    proto = _check(tmp_path, m)
    assert [n.op_type for n in proto.graph.node] == [
        "Transpose", "Conv", "Flatten", "Gemm", "Reshape", "Transpose", "Conv", "Reshape"]


def _lenet(extra):
    head = [Flatten(), Dense(120, "relu"), Dense(84, "relu"), Dense(10, "softmax")]
    if not extra:   # nnfast train --model cnn's network on 28x28 images
        return [Conv2D(6, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
                MaxPooling2D(2), Conv2D(16, 5, padding="same", activation="relu"),
                MaxPooling2D(2), *head]
    return [Conv2D(8, 3, strides=2, input_shape=(28, 28, 3)), BatchNormalization(),
            Activation("relu"), Dropout(0.25), AveragePooling2D(3, strides=2, padding="same"),
            Conv2D(16, 3, padding="same", dilation_rate=2, activation="elu"),
            MaxPooling2D(3, strides=1), GlobalAveragePooling2D(), Dense(10, "softmax")]


@pytest.mark.parametrize("extra", [False, True])
def test_lenet_class_network_trained(tmp_path, extra):
    m = nnfast.Sequential(_lenet(extra), seed=0)
    m.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((64, *m.layers[0].input_shape), dtype=np.float32)
    m.fit(x, rng.integers(0, 10, 64), epochs=1, batch_size=16, verbose=0)
    proto = _check(tmp_path, m)
    ops = [n.op_type for n in proto.graph.node]
    # one layout change where the image enters the convolutions, one before the head
    assert ops.count("Transpose") == (1 if extra else 2)
    if not extra:
        assert ops == ["Transpose", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool",
                       "Transpose", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm",
                       "Softmax"]


def test_float64_models(tmp_path):
    m = _model([MaxPooling2D(2, padding="same", input_shape=(7, 6, 3)), BatchNormalization(),
                Activation("tanh"), Reshape((3, 4, 3)), GlobalAveragePooling2D(), Dense(4)],
               dtype="float64")
    _check(tmp_path, m)


@pytest.mark.parametrize("cls,layer,op", [
    (Conv2D, Conv2D(2, 3), "Conv"), (AveragePooling2D, AveragePooling2D(), "AveragePool")])
def test_float64_conv_and_average_pooling_are_refused(tmp_path, cls, layer, op):
    m = nnfast.Sequential([Dense(32, input_dim=4), Reshape((4, 4, 2)), layer], dtype="float64")
    m.build()
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=(
            f"^to_onnx: layer '{layer.name}' of class {cls.__name__} in a float64 model: ONNX "
            f"Runtime's CPU provider has no double kernel for {op} \\(loading the file fails "
            f"with NOT_IMPLEMENTED\\), so nnfast does not write it; export a float32 copy")):
        m.to_onnx(path)
    assert not path.exists()
    # the float32 copy the message names exports
    m32 = nnfast.Sequential([type(lay).from_config(lay.get_config()) for lay in m.layers],
                            dtype="float32")
    m32.build()
    m32.set_weights(m.get_weights())
    m32.to_onnx(path)
    assert path.exists()
