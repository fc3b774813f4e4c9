"""Issue #14, the break-test of ONNX import/export: activation subgraphs are recognised by
their structure and exact constants (not by sampling), constant folding refuses bad nodes with
the promised message and only folds what the chosen output needs, skl2onnx's binary
classifiers are refused saying what to do, opset < 12 Dropout reads its ratio attribute, and
to_onnx's errors name the user's path."""
import os
import warnings

import numpy as np
import pytest

import nnfast
from nnfast.layers import Dense

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _c(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.array(value, dtype), name)


def _save(tmp_path, nodes, inits, elem=TensorProto.FLOAT, opset=17, name="m.onnx",
          outputs=("y",), out_dims=("N", 3)):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", elem, ["N", 4])],
        [helper.make_tensor_value_info(o, elem, list(out_dims)) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8)
    onnx.checker.check_model(model)
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def _dense_inits(dtype=np.float32):
    rng = np.random.default_rng(0)
    return [numpy_helper.from_array(rng.normal(size=(4, 3)).astype(dtype), "W"),
            numpy_helper.from_array(rng.normal(size=3).astype(dtype), "b")]


GEMM = helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm")


def _refused_at(path, node, op, feeds):
    feeds = feeds.replace("(", r"\(").replace(")", r"\)")
    return pytest.raises(ValueError, match=(
        f"^from_onnx: {path!r} node '{node}' \\({op}\\): the value 'h' feeds {feeds} and "
        "they are not an elementwise subgraph of gelu, gelu_tanh, silu, softplus as exporters "
        "write it: branches and residual connections are not supported"))


def test_silu_plus_a_bump_between_sample_points_is_refused(tmp_path):
    # y = h·sigmoid(h) + exp(-((h - 0.0125)^2)·1e6): silu except near 0.0125, where ORT's
    # output differs by 1.0; sampling at 0.025 spacing accepted it as silu
    nodes = [GEMM, helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
             helper.make_node("Mul", ["h", "s"], ["m"], name="mul"),
             helper.make_node("Sub", ["h", "c"], ["d"], name="sub"),
             helper.make_node("Mul", ["d", "d"], ["d2"], name="sq"),
             helper.make_node("Mul", ["d2", "k"], ["e"], name="scale"),
             helper.make_node("Neg", ["e"], ["ne"], name="neg"),
             helper.make_node("Exp", ["ne"], ["bump"], name="exp"),
             helper.make_node("Add", ["m", "bump"], ["y"], name="add")]
    path = _save(tmp_path, nodes, _dense_inits() + [_c("c", 0.0125), _c("k", 1e6)])
    with _refused_at(path, "sig", "Sigmoid", "3 nodes (Sigmoid 'sig', Mul 'mul', Sub 'sub')"):
        nnfast.from_onnx(path)


def test_float32_cancellation_is_not_read_as_tanh(tmp_path):
    # tanh((h + 1e8) - 1e8) is tanh in float64 and a step function in the float32 graph
    nodes = [GEMM, helper.make_node("Add", ["h", "big"], ["a"], name="add"),
             helper.make_node("Sub", ["a", "big"], ["s"], name="sub"),
             helper.make_node("Tanh", ["s"], ["y"], name="tanh")]
    path = _save(tmp_path, nodes, _dense_inits() + [_c("big", 1e8)])
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'add' \\(Add\\): "
                                         "unsupported operator or pattern starting here: Add on "
                                         "'h' does not begin a layer nnfast has, nor an "
                                         "elementwise subgraph computing one of gelu, "
                                         "gelu_tanh, silu, softplus$"):
        nnfast.from_onnx(path)


def _gelu_nodes(sqrt2_name="sqrt2", op="Div"):
    return [GEMM, helper.make_node(op, ["h", sqrt2_name], ["t"], name="div"),
            helper.make_node("Erf", ["t"], ["e"], name="erf"),
            helper.make_node("Add", ["one", "e"], ["p"], name="add"),
            helper.make_node("Mul", ["half", "p"], ["hp"], name="mul1"),
            helper.make_node("Mul", ["hp", "h"], ["y"], name="mul2")]


@pytest.mark.parametrize("dtype,elem", [(np.float32, TensorProto.FLOAT),
                                        (np.float64, TensorProto.DOUBLE)])
def test_gelu_constants_are_checked_to_the_dtype_rounding(tmp_path, dtype, elem):
    base = _dense_inits(dtype) + [_c("one", 1.0, dtype), _c("half", 0.5, dtype)]
    sqrt2 = dtype(np.sqrt(2.0))
    for value, name in [(sqrt2, "a.onnx"), (np.nextafter(sqrt2, dtype(2)), "b.onnx")]:
        path = _save(tmp_path, _gelu_nodes(), base + [_c("sqrt2", value, dtype)], elem,
                     name=name)   # the exact value rounded to the dtype, or one ulp above
        assert [lay.activation for lay in nnfast.from_onnx(path).layers] == ["gelu"]
    # the Mul-by-1/√2 form onnx's own function body writes
    path = _save(tmp_path, _gelu_nodes("r", "Mul"), base + [_c("r", np.sqrt(0.5), dtype)],
                 elem, name="c.onnx")
    assert [lay.activation for lay in nnfast.from_onnx(path).layers] == ["gelu"]
    for value in (np.nextafter(np.nextafter(sqrt2, dtype(2)), dtype(2)), 1.4142):
        path = _save(tmp_path, _gelu_nodes(), base + [_c("sqrt2", value, dtype)], elem,
                     name="d.onnx")   # two ulps off, or a rounded constant: another function
        with _refused_at(path, "div", "Div", "2 nodes (Div 'div', Mul 'mul2')"):
            nnfast.from_onnx(path)


def test_silu_as_x_over_one_plus_exp_minus_x(tmp_path):
    nodes = [GEMM, helper.make_node("Neg", ["h"], ["n"], name="neg"),
             helper.make_node("Exp", ["n"], ["e"], name="exp"),
             helper.make_node("Add", ["e", "one"], ["d"], name="add"),
             helper.make_node("Div", ["h", "d"], ["y"], name="div")]
    path = _save(tmp_path, nodes, _dense_inits() + [_c("one", 1.0)])
    m = nnfast.from_onnx(path)
    assert [lay.activation for lay in m.layers] == ["silu"]
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    W, b = (numpy_helper.to_array(t) for t in _dense_inits())
    z = (x @ W + b).astype(np.float64)
    np.testing.assert_allclose(m.predict(x), z / (1 + np.exp(-z)), rtol=1e-5, atol=1e-6)
    nodes[3] = helper.make_node("Add", ["e", "two"], ["d"], name="add")   # x / (2 + e^-x)
    path = _save(tmp_path, nodes, _dense_inits() + [_c("two", 2.0)], name="two.onnx")
    with _refused_at(path, "neg", "Neg", "2 nodes (Neg 'neg', Div 'div')"):
        nnfast.from_onnx(path)


@pytest.mark.parametrize("dtype,elem", [(np.float32, TensorProto.FLOAT),
                                        (np.float64, TensorProto.DOUBLE)])
def test_pytorch_softplus_threshold_is_float32_only(tmp_path, dtype, elem):
    nodes = [GEMM, helper.make_node("Softplus", ["h"], ["s"], name="sp"),
             helper.make_node("Greater", ["h", "t"], ["g"], name="gt"),
             helper.make_node("Where", ["g", "h", "s"], ["y"], name="where")]
    path = _save(tmp_path, nodes, _dense_inits(dtype) + [_c("t", 20.0, dtype)], elem)
    if dtype == np.float32:   # e^-20 absolute above 20: below float32's rounding there
        assert [lay.activation for lay in nnfast.from_onnx(path).layers] == ["softplus"]
    else:                     # above float64's: not provably softplus
        with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'sp' \\(Softplus\\): "
                                             "the value 'h' feeds 3 nodes"):
            nnfast.from_onnx(path)


def _fold_graph(tmp_path, fold_nodes, name, other=True):
    # y = Gemm(x, W', b) where W' comes through the folded nodes from the constant "w0"
    w0 = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = fold_nodes + [helper.make_node("Gemm", ["x", "Wt", "b"], ["y"], name="gemm",
                                           transB=1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])]
        + [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["d"])] * other,
        [numpy_helper.from_array(w0, "w0"), _c("b", [0.0, 1.0, 2.0]),
         numpy_helper.from_array(np.array([5, -1], np.int64), "shape"),
         numpy_helper.from_array(np.array([0], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("bad,msg", [
    (helper.make_node("Transpose", ["w0"], ["z"], name="bad", perm=[0, 0]),
     r"\(Transpose\): Transpose of a constant of shape \(3, 4\) with perm=\[0, 0\]: perm must "
     r"be a permutation of \[0, 1\]$"),
    (helper.make_node("Squeeze", ["w0", "axes"], ["z"], name="bad"),
     r"\(Squeeze\): Squeeze of a constant of shape \(3, 4\) at axes \[0\]: axes \[0\] are not "
     "dimensions of size 1$"),
    (helper.make_node("Reshape", ["w0", "shape"], ["z"], name="bad"),
     r"\(Reshape\): Reshape of a constant of shape \(3, 4\) to \[5, -1\]: 12 elements do not "
     "fit$")])
def test_bad_constant_folds_are_refused_only_where_the_output_needs_them(tmp_path, bad, msg):
    ident = helper.make_node("Identity", ["w0"], ["Wt"], name="ident")
    # the bad node feeds only the other output "z": the model of "y" imports
    path = _fold_graph(tmp_path, [bad, ident], "other.onnx")
    m = nnfast.from_onnx(path, output="y")
    np.testing.assert_array_equal(m.get_weights()[0], np.arange(12.0).reshape(3, 4).T)
    # the bad node on the way to "y": refused naming it
    bad.output[0] = "Wt"
    path = _fold_graph(tmp_path, [bad], "on.onnx", other=False)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'bad' " + msg):
        nnfast.from_onnx(path, output="y")


def test_skl2onnx_binary_classifier_is_refused_saying_what_to_do(tmp_path):
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx not installed")
    from sklearn.neural_network import MLPClassifier
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((5,), max_iter=20, random_state=0).fit(X, X[:, 0] > 0)
    path = str(tmp_path / "b.onnx")
    with open(path, "wb") as f:
        f.write(skl2onnx.to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}})
                .SerializeToString())
    with pytest.raises(ValueError, match=(
            f"^from_onnx: {path!r} node 'Sub' \\(Sub\\): the two-column output \\[1 - p, p\\] "
            "built from 'out_activations_result' \\(skl2onnx's binary classifiers\\) is not "
            "supported: nnfast has no layer computing it; convert the fitted scikit-learn "
            r"MLPClassifier with nnfast.sklearn.MLPClassifier.from_sklearn\(est\) instead$")):
        nnfast.from_onnx(path, output="probabilities")


@pytest.mark.parametrize("opset", [7, 10, 11])
def test_dropout_ratio_attribute_below_opset_12(tmp_path, opset):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm"),
             helper.make_node("Dropout", ["h"], ["y"], name="drop", ratio=0.2)]
    path = _save(tmp_path, nodes, _dense_inits(), opset=opset)
    m = nnfast.from_onnx(path)
    assert [type(lay).__name__ for lay in m.layers] == ["Dense", "Dropout"]
    assert m.layers[1].rate == float(np.float32(0.2))   # ONNX attributes are float32


def test_dropout_in_training_mode_below_opset_7_is_refused(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm"),
             helper.make_node("Dropout", ["h"], ["y"], name="drop", ratio=0.2)]
    path = _save(tmp_path, nodes, _dense_inits(), opset=6)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'drop' \\(Dropout\\): "
                                         r"Dropout with is_test=0 \(training mode\) is not an "
                                         "inference graph$"):
        nnfast.from_onnx(path)
    nodes[1] = helper.make_node("Dropout", ["h"], ["y"], name="drop", ratio=0.2, is_test=1)
    path = _save(tmp_path, nodes, _dense_inits(), opset=6, name="t.onnx")
    assert nnfast.from_onnx(path).layers[1].rate == float(np.float32(0.2))


def test_to_onnx_errors_name_the_users_path(tmp_path):
    m = nnfast.Sequential([Dense(3, input_dim=4)], seed=0)
    m.build()
    missing = str(tmp_path / "nonexistent" / "x.onnx")
    with pytest.raises(FileNotFoundError) as info:
        m.to_onnx(missing)
    assert info.value.filename == missing and ".tmp" not in str(info.value)
    assert str(info.value) == f"[Errno 2] No such file or directory: {missing!r}"
    with pytest.raises(IsADirectoryError) as info:
        m.to_onnx(str(tmp_path))
    assert str(info.value) == f"[Errno 21] Is a directory: {str(tmp_path)!r}"
    assert os.listdir(tmp_path) == []     # no temporary file left
    m.to_onnx(tmp_path / "ok.onnx")
    assert os.listdir(tmp_path) == ["ok.onnx"]
