"""nnfast.load_model on hostile and broken files: every size is checked against the architecture
and a bound before anything is allocated, every field of model.json is checked, and the error is
a ValueError naming the file and the field (docs/model.md, "Loading untrusted files")."""
import io
import json
import os
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast.engine import model_archive, model_doc

X, Y = blobs(n=32)
PARAMS = 6 * 16 + 16 + 16 * 3 + 3          # mlp(): Dense(16) on 6 features, Dense(3)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    model = mlp(seed=3, dropout=0.2, compile_with="adam")
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("good") / "good.nnf"
    model.save(path)
    return path


def members_of(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in (members.items() if isinstance(members, dict) else members):
            zf.writestr(name, data)


def with_doc(good, path, edit=None, text=None):
    members = members_of(good)
    if text is None:
        doc = json.loads(members["model.json"])
        edit(doc)
        text = json.dumps(doc)
    members["model.json"] = text.encode()
    write_zip(path, members)


def load_error(path) -> str:
    """The message after "cannot load '<path>': "; asserts the ValueError and the prefix."""
    with pytest.raises(ValueError) as info:
        nnfast.load_model(path)
    prefix = f"cannot load {str(path)!r}: "
    assert str(info.value).startswith(prefix), str(info.value)
    return str(info.value)[len(prefix):]


def npy_header(header: str) -> bytes:
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")


def setter(*path_and_value):
    *path, key, value = path_and_value

    def edit(doc):
        d = doc
        for p in path:
            d = d[p]
        d[key] = value
    return edit


def deleter(*path):
    def edit(doc):
        d = doc
        for p in path[:-1]:
            d = d[p]
        del d[path[-1]]
    return edit


# ------------------------------------------------------------------------- model.json fields
BOUND = "[1, 2147483647]"
STEPS = "[0, 9223372036854775806]"   # the next step (count + 1) must fit int64


@pytest.mark.parametrize("edit, message", [
    (setter("model", "layers", 0, "config", "units", 10**12),
     f"model.layers[0].config.units: expected an integer in {BOUND}, got 1000000000000"),
    (setter("model", "layers", 0, "config", "units", 0),
     f"model.layers[0].config.units: expected an integer in {BOUND}, got 0"),
    (setter("model", "layers", 0, "config", "units", 16.0),
     f"model.layers[0].config.units: expected an integer in {BOUND}, got 16.0"),
    (setter("model", "layers", 0, "config", "units", True),
     f"model.layers[0].config.units: expected an integer in {BOUND}, got True"),
    (setter("model", "layers", 0, "config", "input_shape", [6, -1]),
     f"model.layers[0].config.input_shape[1]: expected an integer in {BOUND}, got -1"),
    (setter("model", "layers", 0, "config", "input_shape", [1] * 9),
     "model.layers[0].config.input_shape: expected a list of 1 to 8 items, got [1, 1, 1, 1, 1, "
     "1, 1, 1, 1]"),
    (setter("input_shape", [10**12]),
     f"input_shape[0]: expected an integer in {BOUND}, got 1000000000000"),
    (setter("model", "layers", 0, "config", "evil", 1),
     "model.layers[0].config: unknown field 'evil' for Dense; expected units, activation, "
     "use_bias, kernel_initializer, bias_initializer, kernel_regularizer, alpha, input_dim, "
     "input_shape, name"),
    (deleter("model", "layers", 0, "config", "units"),
     "model.layers[0].config: missing field 'units'"),
    (setter("model", "layers", 0, "class", "os.system"),
     "model.layers[0].class: expected one of Dense, Activation, Dropout, Flatten, Conv2D, "
     "MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, BatchNormalization, Reshape, "
     "got 'os.system'"),
    (setter("model", "layers", 0, "config", "activation", "relv"),
     "model.layers[0].config: unknown activation 'relv'; valid activations: identity, relu, "
     "leaky_relu, elu, sigmoid, tanh, gelu, gelu_tanh, silu, softplus, softmax, log_softmax (or "
     "None/'linear' for identity)"),
    (setter("model", "layers", 1, "config", "rate", 1.5),
     "model.layers[1].config.rate: expected a number in [0, 1], got 1.5"),
    (setter("model", "layers", 1, "config", "seed", -1),
     "model.layers[1].config.seed: expected an integer in [0, 18446744073709551615], got -1"),
    (setter("model", "layers", [{"class": "Dense", "config": {"units": 1}}] * 1025),
     "model.layers: expected a list of 0 to 1024 items, got [{'class': 'Dense', 'config': "
     "{'units': 1}}, {'class': 'Dense', 'config': {'u..."),
    (setter("model", "dtype", "float16"),
     "model.dtype: expected one of float32, float64, got 'float16'"),
    (setter("model", "seed", 2**64),
     "model.seed: integer 18446744073709551616 is out of range"),
    (setter("model", "name", 7), "model.name: expected a string, got 7"),
    (setter("built", "yes"), "built: expected true or false, got 'yes'"),
    (setter("format", "keras"),
     "format: not an nnfast model file (format is 'keras', expected 'nnfast.model')"),
    (setter("format_version", "1"), "format_version: invalid format_version '1'"),
    (setter("format_version", 99),
     "format_version: written by a newer nnfast (format version 99, '0.1.0'); this nnfast "
     "reads format versions up to 1"),
    (deleter("state"), "model.json: missing field 'state'"),
    (setter("surprise", 1),
     "model.json: unknown field 'surprise'; expected format, format_version, nnfast_version, "
     "model, built, input_shape, compile, state, arrays"),
    (setter("state", "step", -4), f"state.step: expected an integer in {STEPS}, got -4"),
    (setter("state", "epoch", 2**63), f"state.epoch: expected an integer in {STEPS}, got "
                                      "9223372036854775808"),
    (setter("compile", "optimizer", "iterations", -1),
     f"compile.optimizer.iterations: expected an integer in {STEPS}, got -1"),
    # the next step must still be valid: 2**63 - 1 passed, then fit failed in the kernel
    (setter("compile", "optimizer", "iterations", 2**63 - 1),
     f"compile.optimizer.iterations: expected an integer in {STEPS}, got 9223372036854775807"),
    (setter("state", "step", 2**63 - 1),
     f"state.step: expected an integer in {STEPS}, got 9223372036854775807"),
    # metric fields that size an allocation are bounded at load (issue #17 item 1)
    (setter("compile", "metrics", [{"class": "AUC", "config": {"num_thresholds": 2**31 - 1}}]),
     "compile.metrics[0].config.num_thresholds: expected an integer in [2, 1000000], got "
     "2147483647"),
    (setter("compile", "metrics", [{"class": "AUC", "config": {"num_thresholds": 1}}]),
     "compile.metrics[0].config.num_thresholds: expected an integer in [2, 1000000], got 1"),
    (setter("compile", "metrics", [{"class": "TopKCategoricalAccuracy",
                                    "config": {"k": 2**31}}]),
     "compile.metrics[0].config.k: expected an integer in [1, 2147483647], got 2147483648"),
    (setter("compile", "metrics", [{"class": "Precision", "config": {"class_id": -1}}]),
     "compile.metrics[0].config.class_id: expected an integer in [0, 2147483647], got -1"),
    (setter("compile", "metrics", [{"class": "Recall", "config": {"thresholds": [0.5]}}]),
     "compile.metrics[0].config.thresholds: expected a number in [0, 1], got [0.5]"),
    (setter("compile", "optimizer", "class", "Lion"),
     "compile.optimizer.class: expected one of SGD, Adam, AdamW, RMSprop, Adagrad, got 'Lion'"),
    (setter("compile", "optimizer", "config", "learning_rate", -1.0),
     "compile.optimizer.config.learning_rate: expected a number in [0, inf], got -1.0"),
    (setter("compile", "optimizer", "config", "beta_1", 1.0),
     "compile.optimizer.config: Adam: beta_1 must be a finite number in [0.0, 1.0), got 1.0"),
    (setter("compile", "optimizer", "config", "momentum", 0.9),
     "compile.optimizer.config: unknown field 'momentum' for Adam; expected learning_rate, "
     "beta_1, beta_2, epsilon, weight_decay, clipnorm"),
    (setter("compile", "loss", "class", "Pickle"),
     "compile.loss.class: expected one of SparseCategoricalCrossentropy, "
     "CategoricalCrossentropy, BinaryCrossentropy, MeanSquaredError, Huber, got 'Pickle'"),
    (setter("compile", "metrics", ["accuracy"] * 17),
     "compile.metrics: expected a list of 0 to 16 items, got ['accuracy', 'accuracy', "
     "'accuracy', 'accuracy', 'accuracy', 'accuracy', 'acc..."),
    (setter("compile", "metrics", ["mse"]),
     "compile.metrics: compile: metric 'mse' compares outputs with targets of the same shape, "
     "but loss 'sparse_categorical_crossentropy' takes integer class labels; use 'accuracy', or "
     "'categorical_crossentropy' with one-hot targets"),
    (setter("arrays", "params", "shape", [10**12]),
     f"arrays.params: says float32 (1000000000000,); the architecture needs float32 ({PARAMS},)"),
    (setter("arrays", "params", "shape", [-1]),
     "arrays.params.shape[0]: expected an integer in [0, 9223372036854775807], got -1"),
    (setter("arrays", "params", "dtype", "object"),
     "arrays.params.dtype: expected one of float32, float64, got 'object'"),
    (setter("arrays", "params", "file", "../../etc/passwd"),
     "arrays.params.file: expected 'params.npy', got '../../etc/passwd'"),
    (deleter("arrays", "optimizer/v"),
     "arrays: lists ['optimizer/m', 'params']; the architecture has ['optimizer/m', "
     "'optimizer/v', 'params']"),
    (setter("input_shape", None), "input_shape: missing for a built model"),
    (setter("built", False), "input_shape: must be null for a model that is not built"),
    # the layers' sizes and the arrays agree with each other but not with the data in the file
    (lambda d: (setter("model", "layers", 0, "config", "units", 10**6)(d),
                setter("arrays", "params", "shape", [6 * 10**6 + 10**6 + 3 * 10**6 + 3])(d)),
     "arrays.optimizer/m: says float32 (163,); the architecture needs float32 (10000003,)"),
], ids=lambda v: v[:40] if isinstance(v, str) else None)
def test_each_field_is_checked_with_a_message_naming_it(good, tmp_path, edit, message):
    bad = tmp_path / "bad.nnf"
    with_doc(good, bad, edit)
    assert load_error(bad) == message


@pytest.mark.parametrize("text, message", [
    ('{"a": 1, "a": 2}', "model.json: duplicate key 'a'"),
    ('{"x": NaN}', "model.json: NaN is not allowed (JSON has no NaN or Infinity)"),
    ('{"x": -Infinity}', "model.json: -Infinity is not allowed (JSON has no NaN or Infinity)"),
    ('{"x": 1e400}', "model.json: number '1e400' is out of range"),
    ('{"x": ' + "9" * 30 + "}", "model.json: integer '999999999999999999999999999999' is out "
                                "of range"),
    ('{"x": ' + "[" * 100000 + "]" * 100000 + "}", "model.json: nested deeper than 32 levels"),
    ('{"x": ' + "[" * 40 + "]" * 40 + "}", "x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
                                         "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested "
                                         "deeper than 32 levels"),
    ('{"x": "' + "a" * 1025 + '"}', "x: a string of 1025 characters; at most 1024"),
    ('{"' + "k" * 1025 + '": 1}', "a key in model.json: a string of 1025 characters; at most "
                                  "1024"),
    ("[1, 2]", "model.json: expected a JSON object, got list"),
    ('{"x": 18446744073709551616}', "x: integer 18446744073709551616 is out of range"),
    ("{not json", "model.json: not valid JSON (Expecting property name enclosed in double quotes:"
                  " line 1 column 2 (char 1))"),
    ('{"format": "nnfast.model", "format_version": 1}',
     "model.json: missing field 'nnfast_version'"),
])
def test_json_is_parsed_with_bounds(good, tmp_path, text, message):
    bad = tmp_path / "bad.nnf"
    with_doc(good, bad, text=text)
    assert load_error(bad) == message


def test_json_member_size_is_bounded_before_reading(good, tmp_path):
    bad = tmp_path / "bad.nnf"
    with_doc(good, bad, text=" " * (model_doc.MAX_JSON_BYTES + 1))
    assert load_error(bad) == "model.json: 1048577 bytes; at most 1048576"


# ------------------------------------------------------------------------- .npy members
@pytest.mark.parametrize("member, message", [
    (npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }"),
     f"params.npy: holds float32 (99999999999,); the architecture needs float32 ({PARAMS},)"),
    (npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"),
     f"params.npy: holds float32 (-1,); the architecture needs float32 ({PARAMS},)"),
    (npy_header(f"{{'descr': '|O', 'fortran_order': False, 'shape': ({PARAMS},), }}"),
     f"params.npy: holds object ({PARAMS},); the architecture needs float32 ({PARAMS},)"),
    (npy_header(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({PARAMS},), }}"),
     f"params.npy: holds float64 ({PARAMS},); the architecture needs float32 ({PARAMS},)"),
    (npy_header(f"{{'descr': '<f4', 'fortran_order': True, 'shape': ({PARAMS},), }}"),
     f"params.npy: holds float32 ({PARAMS},) (Fortran order); the architecture needs float32 "
     f"({PARAMS},)"),
    (npy_header(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({PARAMS},), }}"),
     f"params.npy: 129 bytes; its header (129 bytes) and float32 ({PARAMS},) data need "
     f"{129 + 4 * PARAMS}"),
    (npy_header("__import__('os').system('touch pwned')"),   # "..." ends a prefix
     "params.npy: not a valid .npy header (ValueError: malformed node or string on line 1: ..."),
    (b"\x93NUMPY\x03\x00" + b"\x00" * 100,
     "params.npy: .npy format version (3, 0); nnfast reads 1.0 and 2.0"),
    (b"not an npy", "params.npy: not a valid .npy array, or corrupted (the magic string is not "
                    "correct; expected b'\\x93NUMPY', got b'not an')"),
])
def test_npy_headers_are_compared_with_the_architecture_before_reading(good, tmp_path, member,
                                                                        message):
    members = members_of(good)
    members["params.npy"] = member
    bad = tmp_path / "bad.nnf"
    write_zip(bad, members)
    tracemalloc.start()
    try:
        got = load_error(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if message.endswith("..."):
        assert got.startswith(message[:-3]), got
    else:
        assert got == message
    assert peak < 2**20           # nothing of the claimed size was allocated
    assert not os.path.exists("pwned")


def test_big_endian_arrays_of_the_right_type_load(good, tmp_path):
    members = members_of(good)
    params = np.load(io.BytesIO(members["params.npy"]))
    buf = io.BytesIO()
    np.save(buf, params.astype(">f4"))
    members["params.npy"] = buf.getvalue()
    path = tmp_path / "big_endian.nnf"
    write_zip(path, members)
    np.testing.assert_array_equal(nnfast.load_model(path)._params, params)


def test_nan_in_arrays_is_refused(good, tmp_path):
    members = members_of(good)
    m = np.load(io.BytesIO(members["optimizer/m.npy"]))
    m[5] = np.nan
    buf = io.BytesIO()
    np.save(buf, m)
    members["optimizer/m.npy"] = buf.getvalue()
    bad = tmp_path / "bad.nnf"
    write_zip(bad, members)
    assert load_error(bad) == "optimizer/m.npy: contains NaN or Inf"


# ------------------------------------------------------------------------- the zip archive
def test_zip_members_are_checked(good, tmp_path):
    members = members_of(good)
    bad = tmp_path / "bad.nnf"

    write_zip(bad, members, compression=zipfile.ZIP_DEFLATED)
    assert load_error(bad) == ("model.json: compressed (method 8); nnfast model files hold "
                               "stored members only")

    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(bad, list(members.items()) + [("params.npy", members["params.npy"])])
    assert load_error(bad) == "params.npy: appears twice in the archive"

    write_zip(bad, {**members, "payload.pkl": b"cos\nsystem\n"})
    assert load_error(bad) == ("payload.pkl: unexpected member; model.json lists ['model.json', "
                               "'optimizer/m.npy', 'optimizer/v.npy', 'params.npy']")

    write_zip(bad, {k: v for k, v in members.items() if k != "optimizer/v.npy"})
    assert load_error(bad) == ("optimizer/v.npy: missing from the archive (truncated or not "
                               "written by nnfast)")

    write_zip(bad, {k: v for k, v in members.items() if k != "model.json"})
    assert load_error(bad) == ("model.json: not an nnfast model file (no 'model.json' in the "
                               "archive)")

    write_zip(bad, [(f"m{i}", b"") for i in range(65)])
    assert load_error(bad) == ("the zip directory lists 65 members in 3175 bytes; an nnfast "
                               "model file has at most 64 members in 65536 bytes")


def _patched(good, tmp_path, signature: bytes, offset: int, fmt: str, value) -> str:
    data = bytearray(good.read_bytes())
    at = data.rfind(signature) if signature == b"PK\x05\x06" else data.find(signature)
    struct.pack_into(fmt, data, at + offset, value)
    bad = tmp_path / "bad.nnf"
    bad.write_bytes(bytes(data))
    return load_error(bad)


def test_sizes_in_zip_records_are_bounded(good, tmp_path):
    size = good.stat().st_size
    # the central directory's uncompressed size of model.json (the first entry): a zip bomb
    got = _patched(good, tmp_path, b"PK\x01\x02", 24, "<L", 0xFFFFFFFF)
    assert got.startswith("model.json: claims 4294967295 bytes (")
    assert got.endswith(f" in a file of {size} bytes (truncated or corrupted)")
    # the end record's directory size and entry count
    assert _patched(good, tmp_path, b"PK\x05\x06", 12, "<L", 10**8) == (
        "the zip directory lists 4 members in 100000000 bytes; an nnfast model file has at most "
        "64 members in 65536 bytes")
    assert _patched(good, tmp_path, b"PK\x05\x06", 10, "<H", 0xFFFF).startswith(
        "the zip directory lists 65535 members in ")
    # encrypted flag on a member
    got = _patched(good, tmp_path, b"PK\x01\x02", 8, "<H", 1)
    assert got == "model.json: encrypted"


def test_bit_flips_in_data_are_caught_by_the_crc(good, tmp_path):
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("params.npy")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 200] ^= 0xFF
    bad = tmp_path / "bad.nnf"
    bad.write_bytes(bytes(data))
    assert load_error(bad) == ("params.npy: not a valid .npy array, or corrupted (Bad CRC-32 for "
                               "file 'params.npy')")


# ------------------------------------------------------------------------- not model files
def test_files_that_are_not_model_files(good, tmp_path):
    path = tmp_path / "f.nnf"
    for content in (b"", b"hello, I am a text file", good.read_bytes()[:-10],
                    good.read_bytes()[: good.stat().st_size // 2]):
        path.write_bytes(content)
        assert load_error(path) == "not an nnfast model file (not a zip archive, or truncated)"
    with pytest.raises(FileNotFoundError) as info:
        nnfast.load_model(tmp_path / "missing.nnf")
    assert info.value.filename == str(tmp_path / "missing.nnf")
    with pytest.raises(IsADirectoryError) as info:
        nnfast.load_model(tmp_path)
    assert info.value.filename == str(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert load_error(fifo) == "not a regular file"


def test_bounds_are_the_documented_ones():
    assert (model_doc.MAX_JSON_BYTES, model_doc.MAX_DEPTH, model_doc.MAX_STRING,
            model_doc.MAX_LAYERS, model_doc.MAX_RANK, model_doc.MAX_DIM) == (
        2**20, 32, 1024, 1024, 8, 2**31 - 1)
    assert (model_archive.MAX_MEMBERS, model_archive.MAX_DIRECTORY_BYTES) == (64, 65536)


def test_auc_num_thresholds_is_bounded_in_the_constructor():
    # Keras 3 sets no upper bound; 2**31 - 1 would allocate 32 GiB at the first evaluate
    assert nnfast.metrics.AUC(num_thresholds=10**6).num_thresholds == 10**6
    with pytest.raises(ValueError) as e:
        nnfast.metrics.AUC(num_thresholds=10**6 + 1)
    assert str(e.value) == ("AUC: num_thresholds must be at most 1000000 (nnfast's bound; Keras "
                            "has none), got 1000001")
    with pytest.raises(ValueError) as e:
        nnfast.metrics.AUC(num_thresholds=1)
    assert str(e.value) == "AUC: num_thresholds must be an integer >= 2, got 1"


def _declare(units: int, inputs: int, built: bool):
    def edit(doc):
        doc["model"]["layers"][0]["config"]["units"] = units
        doc["model"]["layers"][0]["config"]["input_dim"] = inputs
        doc["model"]["layers"][0]["config"]["input_shape"] = None
        if not built:
            doc.update(built=False, arrays={}, compile=None, input_shape=None,
                       state={"step": 0, "epoch": 0})
    return edit


@pytest.mark.parametrize("built", [False, True])
def test_a_declared_input_cannot_make_the_loader_allocate_what_the_file_says(good, tmp_path,
                                                                              built):
    # A declared input builds the model at construction, before the arrays are compared: a
    # 1 KB file declaring 65536 x 65536 weights used to allocate 16 GiB there. 8192 x 8192 is
    # just over the bound and costs only 256 MiB should the check ever regress.
    path = tmp_path / "big.nnf"
    with_doc(good, path, _declare(8192, 8192, built))
    tracemalloc.start()
    try:
        message = load_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
    params = 8192 * 8192 + 8192 + 8192 * 3 + 3      # the two Dense layers of mlp()
    if built:
        size = len(members_of(good)["params.npy"])
        assert message == (f"model.layers: declare {params} parameters ({params * 4} bytes) but "
                           f"the file holds params.npy of {size} bytes")
    else:
        assert message == (f"model.layers: declare {params} parameters in a file that holds no "
                           f"weights; at most {2**26} there")
