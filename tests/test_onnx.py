"""ONNX export and import (nnfast/onnx/): ONNX Runtime runs every exported file and matches
model.predict, for every layer and activation, float32 and float64, on every opset the export
accepts; files written by PyTorch's two exporters, Keras and skl2onnx import and match their
source framework. The oracles are optional test dependencies, skipped with a reason."""
import contextlib
import io
import os
import warnings

import numpy as np
import pytest

import nnfast
from nnfast.layers import ACTIVATIONS, Activation, Dense, Dropout, Flatten

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
pytestmark = pytest.mark.usefixtures("one_thread")
# ONNX Runtime 1.32's CPU provider has these operators for float only: a float64 file using
# them runs on onnx's reference evaluator instead (the file itself is standard ONNX).
ORT_FLOAT_ONLY = {"leaky_relu": "LeakyRelu", "elu": "Elu", "softplus": "Softplus",
                  "gelu": "Erf"}


def _model(act, dtype):
    alpha = 0.3 if act in ("leaky_relu", "elu") else None
    m = nnfast.Sequential([Flatten(input_shape=(2, 3)), Dense(5, act), Dropout(0.25),
                           Activation(act, alpha=alpha), Dense(4, act, use_bias=False)],
                          dtype=dtype, seed=1)
    m.build()
    return m


def _x(dtype, n=7):
    return (np.random.default_rng(0).normal(size=(n, 2, 3)) * 3).astype(dtype)


def _run_file(path, x, act):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime (test extra) not installed")
    try:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:   # onnxruntime's NotImplemented has no stable Python class
        assert x.dtype == np.float64 and act in ORT_FLOAT_ONLY, exc
        assert "NOT_IMPLEMENTED" in str(exc) and ORT_FLOAT_ONLY[act] in str(exc)
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(path).run(None, {"input": x})[0]
    return sess.run(None, {"input": x})[0]


@pytest.mark.parametrize("opset", [13, 17, 20, 21])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_export_runs_on_onnxruntime_like_predict(tmp_path, act, dtype, opset):
    m = _model(act, dtype)
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path, opset=opset)
    onnx.checker.check_model(path, full_check=True)
    for n in (1, 7):   # the batch dimension is dynamic
        x = _x(dtype, n)
        got = _run_file(path, x, act)
        assert got.dtype == np.dtype(dtype) and got.shape == (n, 4)
        tol = dict(rtol=2e-5, atol=2e-6) if dtype == "float32" else dict(rtol=1e-7, atol=1e-8)
        if dtype == "float64" and act == "gelu":
            tol = dict(rtol=2e-6, atol=1e-7)   # onnx.reference's Erf rounds through float32
        np.testing.assert_allclose(got, m.predict(x), **tol)


def test_exported_graph_structure(tmp_path):
    m = nnfast.Sequential([Dense(3, "softmax", input_dim=4)], dtype="float64", seed=0)
    m.build()
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path)   # default opset 17
    proto = onnx.load(path)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "Softmax"]
    assert onnx.helper.get_attribute_value(proto.graph.node[1].attribute[0]) == -1
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert (dims[0].dim_param, dims[1].dim_value) == ("N", 4)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert proto.graph.output[0].name == "output"
    # gelu: the Gelu operator from opset 20, the erf subgraph below it
    g = nnfast.Sequential([Dense(3, "gelu", input_dim=4)], seed=0)
    g.build()
    g.to_onnx(path, opset=20)
    assert [n.op_type for n in onnx.load(path).graph.node] == ["Gemm", "Gelu"]
    g.to_onnx(path, opset=19)
    assert [n.op_type for n in onnx.load(path).graph.node] == ["Gemm", "Div", "Erf", "Add",
                                                               "Mul", "Mul"]


def test_a_head_fused_into_the_loss_is_exported_as_its_activation(tmp_path):
    m = nnfast.Sequential([Dense(3, "softmax", input_dim=4)], seed=0)
    m.compile("sgd", "sparse_categorical_crossentropy")   # trains on logits
    m.build()
    assert m.fused_head == "softmax"
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path)
    assert [n.op_type for n in onnx.load(path).graph.node] == ["Gemm", "Softmax"]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(_run_file(path, x, "softmax"), m.predict(x), rtol=1e-5,
                               atol=1e-7)
    assert np.allclose(m.predict(x).sum(axis=1), 1)


def test_export_bad_arguments(tmp_path):
    m = nnfast.Sequential([Dense(3)], seed=0)    # no declared input: not built yet
    with pytest.raises(ValueError, match="^to_onnx: the model is not built yet; fit it, call "
                                         r"build\(input_shape\) or give the first layer "
                                         "input_dim=$"):
        m.to_onnx(str(tmp_path / "m.onnx"))
    m.build((4,))
    for bad in (12, 22, True, 17.0, "17"):
        with pytest.raises(ValueError, match=f"^to_onnx: opset must be an int from 13 to 21 "
                                             f"\\(default 17\\), got {bad!r}$"):
            m.to_onnx(str(tmp_path / "m.onnx"), opset=bad)
    with pytest.raises(TypeError, match="^to_onnx: path must be a str or os.PathLike, got int$"):
        m.to_onnx(3)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("opset", [13, 20])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_round_trip_through_onnx(tmp_path, act, dtype, opset):
    m = _model(act, dtype)
    path = str(tmp_path / "m.onnx")
    m.to_onnx(path, opset=opset)
    back = nnfast.from_onnx(path)
    assert back.dtype == np.dtype(dtype) and back.input_shape == (2, 3)
    kinds = [type(lay).__name__ for lay in back.layers]
    # an identity Activation layer computes nothing and is not written
    assert kinds == ["Flatten", "Dense", "Dropout"] + ["Activation"] * (act != "identity") \
        + ["Dense"]
    assert [getattr(lay, "activation", None) for lay in back.layers if
            isinstance(lay, Dense)] == [act, act]
    x = _x(dtype)
    if act in ("leaky_relu", "elu") and dtype == "float64":
        # ONNX attributes are float32: alpha 0.3 comes back as float32(0.3)
        assert back.layers[3].alpha == float(np.float32(0.3))
        np.testing.assert_allclose(back.predict(x), m.predict(x), rtol=1e-7, atol=1e-8)
    else:
        np.testing.assert_array_equal(back.predict(x), m.predict(x))


def _torch_net(torch, extra=True):
    nn = torch.nn
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 7), nn.Tanh(),
              nn.Linear(7, 6, bias=False), nn.Sigmoid(), nn.Dropout(0.2)]
    if extra:
        layers += [nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 6), nn.GELU(approximate="tanh"),
                   nn.SiLU(), nn.ELU(0.5), nn.LeakyReLU(0.2), nn.Softplus()]
    return nn.Sequential(*layers, nn.Linear(6, 5), nn.Softmax(dim=1)).eval()


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("dynamo", [False, True])
def test_pytorch_export_imports_and_matches_torch(tmp_path, dynamo, opset):
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    if dynamo:
        pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True), the default, "
                                                 "needs onnxscript")
    net = _torch_net(torch)
    path = str(tmp_path / "t.onnx")
    kw = dict(dynamo=dynamo, input_names=["x"], output_names=["y"], opset_version=opset)
    if dynamo:
        kw["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    else:
        kw["dynamic_axes"] = {"x": {0: "N"}}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 2, 3),), path, **kw)
    m = nnfast.from_onnx(path)
    want = [("Flatten", None), ("Dense", "relu"), ("Dense", "tanh"), ("Dense", "sigmoid"),
            ("Dense", "gelu"), ("Dense", "gelu_tanh"),
            ("Activation", "silu"), ("Activation", "elu"), ("Activation", "leaky_relu"),
            ("Activation", "softplus"), ("Dense", "softmax")]
    # both exporters drop eval-mode dropout; dynamo writes Reshape(x, [-1, 6]) for Flatten
    assert [(type(lay).__name__, getattr(lay, "activation", None))
            for lay in m.layers] == want
    x = np.random.default_rng(1).normal(size=(9, 2, 3)).astype(np.float32) * 2
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(m.predict(x), want, rtol=1e-5, atol=1e-6)


def test_keras_export_imports_and_matches_keras(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras not installed")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras was imported earlier with another backend")
    pytest.importorskip("onnxscript", reason="Keras' ONNX export (torch backend) needs onnxscript")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                           keras.layers.Dense(3, activation="gelu"),
                           keras.layers.Dense(3, activation="softmax")])
    km(np.zeros((1, 4), np.float32))
    path = str(tmp_path / "k.onnx")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        km.export(path, format="onnx")
    m = nnfast.from_onnx(path)
    assert [lay.activation for lay in m.layers] == ["relu", "gelu", "softmax"]
    x = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(m.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_skl2onnx_mlps_import_and_match_sklearn(tmp_path):
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx not installed")
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = X @ rng.normal(size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MLPRegressor(hidden_layer_sizes=(6, 5), activation="tanh", max_iter=30,
                           random_state=0).fit(X, y)
        clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(
            X, np.digitize(y, [-1, 1]))
    path = str(tmp_path / "r.onnx")
    with open(path, "wb") as f:
        f.write(skl2onnx.to_onnx(reg, X[:1]).SerializeToString())
    m = nnfast.from_onnx(path)
    np.testing.assert_allclose(m.predict(X)[:, 0], reg.predict(X), rtol=1e-5, atol=1e-5)
    path = str(tmp_path / "c.onnx")
    proto = skl2onnx.to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}})
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    with pytest.raises(ValueError, match=r"has 2: \['label', 'probabilities'\]; pass output="):
        nnfast.from_onnx(path)
    m = nnfast.from_onnx(path, output="probabilities")
    assert [lay.activation for lay in m.layers] == ["relu", "softmax"]
    np.testing.assert_allclose(m.predict(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
