"""from_onnx refuses what it cannot map with a ValueError naming the file, the node and the
reason, before any model is built; it bounds what it reads (initializer sizes against their
storage, external data confined to the model's directory) and never runs code."""
import os

import numpy as np
import pytest

import nnfast

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save(tmp_path, nodes, inits, in_dims=("N", 4), out_dims=("N", 3), name="m.onnx",
          outputs=("y",), opset=17, check=True):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(out_dims)) for o in outputs],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8)
    if check:
        onnx.checker.check_model(model)
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def _w(name, shape, seed=0):
    return numpy_helper.from_array(
        np.random.default_rng(seed).normal(size=shape).astype(np.float32), name)


def _gemm(out="h", x="x", name="gemm"):
    return helper.make_node("Gemm", [x, "W", "b"], [out], name=name)


INITS = [_w("W", (4, 3)), _w("b", (3,), 1)]


def test_a_plain_graph_imports(tmp_path):
    path = _save(tmp_path, [_gemm("h"), helper.make_node("Relu", ["h"], ["y"], name="r")],
                 INITS)
    m = nnfast.from_onnx(path)
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    W, b = (numpy_helper.to_array(t) for t in INITS)
    np.testing.assert_allclose(m.predict(x), np.maximum(x @ W + b, 0), rtol=1e-6, atol=1e-6)


def test_unsupported_operator_is_named(tmp_path):
    path = _save(tmp_path, [_gemm("h"), helper.make_node("Cos", ["h"], ["y"], name="cos1")],
                 INITS)
    with pytest.raises(ValueError, match=(
            f"^from_onnx: {path!r} node 'cos1' \\(Cos\\): unsupported operator Cos \\(nnfast "
            r"maps: Gemm, MatMul\(\+Add\), Relu, Tanh, Sigmoid, Softplus, LeakyRelu, Elu, "
            r"Softmax, LogSoftmax, Gelu, Flatten, Reshape, Dropout, Identity, Cast, Transpose, "
            r"Conv, MaxPool, AveragePool, ReduceMean, BatchNormalization and the patterns of "
            r"gelu/silu\)$")):
        nnfast.from_onnx(path)


def test_unsupported_pattern_is_named_never_guessed(tmp_path):
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    path = _save(tmp_path, [_gemm("h"), helper.make_node("Mul", ["h", "two"], ["y"],
                                                          name="double")], INITS + [two])
    with pytest.raises(ValueError, match=(
            f"^from_onnx: {path!r} node 'double' \\(Mul\\): unsupported operator or pattern "
            "starting here: Mul on 'h' does not begin a layer nnfast has, nor an elementwise "
            "subgraph computing one of gelu, gelu_tanh, silu, softplus$")):
        nnfast.from_onnx(path)


def test_a_near_miss_of_silu_is_refused(tmp_path):
    # x·sigmoid(x) + 1e-5 agrees with silu to 1e-5 only: silu is read, the Add is refused
    eps = numpy_helper.from_array(np.array(1e-5, np.float32), "eps")
    nodes = [_gemm("h"), helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
             helper.make_node("Mul", ["h", "s"], ["m"], name="mul"),
             helper.make_node("Add", ["m", "eps"], ["y"], name="add")]
    path = _save(tmp_path, nodes, INITS + [eps])
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'add' \\(Add\\): "
                                         "unsupported operator or pattern starting here: Add "
                                         "on 'm' does not begin"):
        nnfast.from_onnx(path)


def test_a_residual_connection_is_refused_saying_why(tmp_path):
    nodes = [_gemm("h"), helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Add", ["h", "r"], ["y"], name="skip")]
    path = _save(tmp_path, nodes, INITS)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'relu' \\(Relu\\): the "
                                         "value 'h' feeds 2 nodes \\(Relu 'relu', Add 'skip'\\) "
                                         "and they are not an elementwise subgraph of gelu, "
                                         "gelu_tanh, silu, softplus as exporters write it: "
                                         "branches and residual connections are not supported "
                                         "\\(nnfast models are one chain of layers\\)$"):
        nnfast.from_onnx(path)
    # the brief's reproducer: the input itself feeds the Gemm and the Add
    W = _w("W", (4, 4))
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "x"], ["y"], name="skip")]
    path = _save(tmp_path, nodes, [W, _w("b", (4,), 1)], out_dims=("N", 4), name="res.onnx")
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'gemm' \\(Gemm\\): the "
                                         "value 'x' feeds 2 nodes \\(Gemm 'gemm', Add 'skip'\\) "
                                         "and they are not an elementwise subgraph of gelu, "
                                         "gelu_tanh, silu, softplus as exporters write it: "
                                         "branches and residual connections are not supported "
                                         "\\(nnfast models are one chain of layers\\)$"):
        nnfast.from_onnx(path)


def test_weights_computed_from_the_input_are_refused(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "x"], ["y"], name="g", transB=1)]
    path = _save(tmp_path, nodes, [], out_dims=("N", "N"))
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'g' \\(Gemm\\): its B "
                                         r"\(the weights\) must be a constant \(an "
                                         "initializer\\), got the computed value 'x'$"):
        nnfast.from_onnx(path)


def test_dynamic_feature_dimension_is_refused(tmp_path):
    path = _save(tmp_path, [_gemm("y")], INITS, in_dims=("N", "F"))
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r}: input 'x' dimension 1 is 'F': "
                                         "a dynamic feature dimension nnfast cannot plan \\(only"
                                         " the batch dimension may be dynamic\\)$"):
        nnfast.from_onnx(path)


def test_mismatched_initializer_shape_is_refused(tmp_path):
    path = _save(tmp_path, [_gemm("y")], [_w("W", (5, 3)), _w("b", (3,))], check=False)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'gemm' \\(Gemm\\): weight "
                                         r"shape \(5, 3\) does not fit 4 input features "
                                         r"\(expected \(4, units\)\)$"):
        nnfast.from_onnx(path)
    path = _save(tmp_path, [_gemm("y")], [_w("W", (4, 3)), _w("b", (2,))], check=False)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'gemm' \\(Gemm\\): bias "
                                         r"shape \(2,\) does not broadcast to \(3,\)$"):
        nnfast.from_onnx(path)


def test_an_initializer_larger_than_its_storage_is_refused_before_allocating(tmp_path):
    big = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 10**9],
                      raw_data=b"\0" * 48)
    path = _save(tmp_path, [_gemm("y")], [big, _w("b", (3,))], check=False)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r}: "):
        nnfast.from_onnx(path)   # the checker or nnfast's size check: never a 16 GB array
    from nnfast.onnx._files import OnnxFile
    ok = _save(tmp_path, [_gemm("y")], INITS, name="ok.onnx")
    with pytest.raises(ValueError, match=f"^from_onnx: {ok!r}: tensor 'W' declares shape "
                                         r"\[4, 1000000000\] \(16000000000 bytes\) but stores "
                                         "48 bytes$"):
        OnnxFile(ok).tensor(big)


def test_truncated_protobuf_is_refused(tmp_path):
    path = _save(tmp_path, [_gemm("y")], INITS)
    with open(path, "rb") as f:
        data = f.read()
    cut = str(tmp_path / "cut.onnx")
    for n in (len(data) // 2, len(data) - 3, 5):
        with open(cut, "wb") as f:
            f.write(data[:n])
        with pytest.raises(ValueError, match=f"^from_onnx: {cut!r}: "):
            nnfast.from_onnx(cut)
    with open(cut, "wb") as f:
        f.write(b"\xff" * 64)
    with pytest.raises(ValueError, match=f"^from_onnx: {cut!r}: not a readable ONNX protobuf "
                                         r"\(truncated or corrupt: "):
        nnfast.from_onnx(cut)


def test_external_data_is_confined_to_the_model_directory(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    graph = helper.make_graph([_gemm("y")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              [_w("W", (4, 3)), _w("b", (3,), 1)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = str(inner / "m.onnx")
    onnx.save_model(model, path, save_as_external_data=True, location="weights.bin",
                    size_threshold=0)
    m = nnfast.from_onnx(path)   # inside the directory: read
    np.testing.assert_array_equal(m.get_weights()[0], numpy_helper.to_array(_w("W", (4, 3))))
    # the same tensors pointing outside the directory: refused
    proto = onnx.load(path, load_external_data=False)
    os.replace(inner / "weights.bin", tmp_path / "weights.bin")
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../weights.bin"
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r}: tensor 'W': external data "
                                         "location '../weights.bin' leaves the model's "
                                         f"directory {os.path.realpath(inner)!r}; refused$"):
        nnfast.from_onnx(path)
    os.symlink(tmp_path / "weights.bin", inner / "link.bin")   # a symlink out: refused too
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "link.bin"
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    with pytest.raises(ValueError, match="external data location 'link.bin' leaves"):
        nnfast.from_onnx(path)


def test_several_outputs_custom_domains_and_training_dropout_are_refused(tmp_path):
    path = _save(tmp_path, [_gemm("h"), helper.make_node("Relu", ["h"], ["y"], name="r")],
                 INITS, outputs=("y", "h"))
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r}: nnfast models have one output; "
                                         r"the graph has 2: \['y', 'h'\]; pass output= one of "
                                         "them$"):
        nnfast.from_onnx(path)
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r}: output='z' is not an output "
                                         r"of the graph: \['y', 'h'\]$"):
        nnfast.from_onnx(path, output="z")
    assert [lay.activation for lay in nnfast.from_onnx(path, output="h").layers] == ["identity"]
    true = numpy_helper.from_array(np.array(True), "train")
    ratio = numpy_helper.from_array(np.array(0.5, np.float32), "ratio")
    path = _save(tmp_path, [_gemm("h"), helper.make_node("Dropout", ["h", "ratio", "train"],
                                                         ["y"], name="drop")],
                 INITS + [ratio, true])
    with pytest.raises(ValueError, match=f"^from_onnx: {path!r} node 'drop' \\(Dropout\\): "
                                         r"Dropout in training mode \(training_mode=true\) is "
                                         "not an inference graph$"):
        nnfast.from_onnx(path)


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="^from_onnx: no such file: 'nope.onnx'$"):
        nnfast.from_onnx("nope.onnx")
    with pytest.raises(TypeError, match="^from_onnx: path must be a str or os.PathLike, got "
                                        "int$"):
        nnfast.from_onnx(3)


def test_import_nnfast_does_not_import_onnx():
    import subprocess
    import sys
    code = ("import sys, nnfast; nnfast.Sequential; nnfast.from_onnx; "
            "print('onnx' in sys.modules, 'nnfast.onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
