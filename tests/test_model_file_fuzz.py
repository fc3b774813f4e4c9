"""Fuzz nnfast.load_model with mutated model files: each load either gives a model of the
original's architecture whose predict runs, or raises ValueError naming the file, quickly and
without allocating what the file claims.

Mutations (a fixed seed, ``NNFAST_FUZZ_CASES`` cases, 1500 by default, ~10 s on the 2-core
development machine): truncation, bit flips and overwritten ranges anywhere in the file; deleted,
duplicated, swapped, renamed, extra and truncated members (the zip rewritten with valid CRCs, so
the checks past the CRC are reached); hostile values at any field of model.json (huge, negative,
NaN, Infinity, deep nesting, long strings, wrong types, deleted and unknown keys, duplicate keys);
hostile .npy headers (huge and negative shapes, object and other dtypes, Fortran order); and
patched sizes and counts in the zip's own records. A bit flip in array data (with a matching
CRC) legitimately loads other weights, so "succeeds" only asserts the architecture. An unbuilt
model's file holds no arrays, so nothing pins its layer sizes: an edited document there is a valid
other model, and "succeeds" asserts only that it loads unbuilt (allocating nothing).

Memory: tracemalloc's peak (NumPy reports its buffers to it) over each load, and the process's
peak RSS, must each grow by less than 64 MB over the run; the base files are ~10 KB.
"""
from __future__ import annotations

import io
import json
import os
import resource
import struct
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast.layers import Dense, Dropout, Flatten

CASES = int(os.environ.get("NNFAST_FUZZ_CASES", "1500"))
SEED = int(os.environ.get("NNFAST_FUZZ_SEED", "20261130"))
MEMORY_BOUND = 64 * 2**20
X, Y = blobs(n=48)


def _nested(depth):
    return 1 if depth == 0 else [_nested(depth - 1)]


HOSTILE = [10**12, 99_999_999_999, 2**31, 2**63, 2**64, 2**70, -1, -(2**63), 0, 10**8, 3 * 10**7,
           1.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf"), True, None, "", "x" * 5000,
           "os.system", "relu", [], {}, _nested(40), [10**12], [-1], [6, 10**12],
           {"class": "Dense", "config": {}}]
NPY_HEADERS = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (%d,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }",
    "{'descr': '>f4', 'fortran_order': False, 'shape': (%d,), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (%d,), }",
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (%d,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 1), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 300 + ")" * 300 + ", }",
    "{'descr': '<f4', 'shape': (%d,), }",
    "__import__('os').system('echo pwned')",
]


def _base_files(tmp_path) -> list:
    """(bytes, the saved model) of a few small models covering the format's fields."""
    trained = mlp(seed=3, dropout=0.2, compile_with="adam")
    trained.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    sgd = nnfast.Sequential([Flatten(input_shape=(2, 3)), Dense(5, "tanh"), Dense(3, "softmax")],
                            dtype="float64", seed=5)
    sgd.compile(nnfast.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    sgd.build((2, 3))
    unbuilt = nnfast.Sequential([Dense(4, "relu", input_dim=6), Dropout(0.5), Dense(2)])
    out = []
    for i, model in enumerate((trained, sgd, unbuilt)):
        path = tmp_path / f"base{i}.nnf"
        model.save(path)
        out.append((path.read_bytes(), model))
    return out


def _members(data: bytes) -> list:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _zip(members) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # duplicate names are a mutation here
        with zipfile.ZipFile(buf, "w") as zf:
            for name, payload in members:
                zf.writestr(name, payload)
    return buf.getvalue()


def _paths(value, prefix=()):
    """Every path into a JSON value (keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _mutate_doc(doc: dict, rng) -> str:
    paths = list(_paths(doc))[1:]
    path = paths[rng.integers(len(paths))]
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    kind = rng.integers(4)
    if kind == 0 or not isinstance(parent, dict):
        parent[path[-1]] = HOSTILE[rng.integers(len(HOSTILE))]
    elif kind == 1:
        del parent[path[-1]]
    elif kind == 2:
        parent["unknown_" + str(rng.integers(100))] = 1
    else:   # a duplicate key: json.dumps cannot write one, so splice it into the text
        text = json.dumps(doc)
        key = json.dumps(str(path[-1]))
        return text.replace(key + ":", key + ": 0, " + key + ":", 1)
    return json.dumps(doc)       # allow_nan: NaN and Infinity are written as such


def _npy_header(header: str, size: int) -> bytes:
    if "%d" in header:
        header = header % size
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")


def _find_all(data: bytes, signature: bytes) -> list:
    out, i = [], data.find(signature)
    while i >= 0:
        out.append(i)
        i = data.find(signature, i + 1)
    return out


def _patch_zip_records(data: bytes, rng) -> bytes:
    """Huge or negative-looking sizes and counts in the zip's own records."""
    out = bytearray(data)
    huge = [0xFFFFFFFF, 0x7FFFFFFF, 10**9, 0]
    kind = rng.integers(3)
    if kind == 0:       # a central directory entry's uncompressed / compressed size
        pos = _find_all(data, b"PK\x01\x02")
        at = pos[rng.integers(len(pos))] + (24 if rng.integers(2) else 20)
        struct.pack_into("<L", out, at, huge[rng.integers(len(huge))])
    elif kind == 1:     # a local header's sizes
        pos = _find_all(data, b"PK\x03\x04")
        at = pos[rng.integers(len(pos))] + (22 if rng.integers(2) else 18)
        struct.pack_into("<L", out, at, huge[rng.integers(len(huge))])
    else:               # the end record's entry counts, directory size or offset
        at = out.rfind(b"PK\x05\x06")
        field = rng.integers(4)
        if field < 2:
            struct.pack_into("<H", out, at + 8 + 2 * field, 0xFFFF)
        else:
            struct.pack_into("<L", out, at + 12 + 4 * (field - 2), huge[rng.integers(len(huge))])
    return bytes(out)


def mutate(data: bytes, rng) -> bytes:
    """One random mutation of the bytes of a valid model file."""
    kind = rng.integers(14)
    if kind == 0:
        return data[:rng.integers(len(data))]
    if kind == 1:
        out = bytearray(data)
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(len(out))
            out[i] ^= 1 << rng.integers(8)
        return bytes(out)
    if kind == 2:
        out = bytearray(data)
        i = rng.integers(len(out))
        n = rng.integers(1, 64)
        out[i:i + n] = rng.bytes(n)
        return bytes(out)
    if kind == 3:
        return _patch_zip_records(data, rng)
    members = _members(data)
    i = rng.integers(len(members))
    name, payload = members[i]
    if kind == 4:
        del members[i]
    elif kind == 5:
        members.append((name, payload if rng.integers(2) else b"{}"))
    elif kind == 6 and len(members) > 1:
        j = (i + 1 + rng.integers(len(members) - 1)) % len(members)
        members[i], members[j] = (name, members[j][1]), (members[j][0], payload)
    elif kind == 7:
        members[i] = (["evil.npy", "../x", "model.json", "params.npy"][rng.integers(4)], payload)
    elif kind == 8:
        members.append(("extra" + str(rng.integers(9)), rng.bytes(rng.integers(64))))
    elif kind == 9 and payload:
        out = bytearray(payload)
        for _ in range(rng.integers(1, 4)):
            out[rng.integers(len(out))] ^= 1 << rng.integers(8)
        members[i] = (name, bytes(out))
    elif kind == 10:
        members[i] = (name, payload[:rng.integers(len(payload) + 1)])
    elif kind in (11, 12):
        j = next(k for k, (n, _) in enumerate(members) if n == "model.json")
        members[j] = ("model.json", _mutate_doc(json.loads(members[j][1]), rng).encode())
    else:
        npys = [k for k, (n, _) in enumerate(members) if n.endswith(".npy")]
        if npys:
            k = npys[rng.integers(len(npys))]
            arr = np.load(io.BytesIO(members[k][1]))
            header = NPY_HEADERS[rng.integers(len(NPY_HEADERS))]
            data_part = arr.tobytes() if rng.integers(2) else b""
            members[k] = (members[k][0], _npy_header(header, arr.size) + data_part)
    return _zip(members)


def _architecture(model):
    return ([type(lay).__name__ for lay in model.layers], model.built, model.input_shape,
            model.output_shape, model.count_params() if model.built else None)


def test_mutated_model_files_load_or_raise_value_error(tmp_path):
    bases = _base_files(tmp_path)
    rng = np.random.default_rng(SEED)
    path = tmp_path / "fuzz.nnf"
    prefix = f"cannot load {str(path)!r}: "
    outcomes = {"loaded": 0, "refused": 0}
    slowest, peak_traced = 0.0, 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        for case in range(CASES):
            data, original = bases[case % len(bases)]
            # a new file each time: ext4 flushes a file truncated and rewritten in place
            path.unlink(missing_ok=True)
            path.write_bytes(mutate(data, rng))
            tracemalloc.reset_peak()
            base_traced = tracemalloc.get_traced_memory()[0]
            start = time.thread_time()    # CPU time: other processes' load cannot inflate it
            try:
                model, error = nnfast.load_model(path), None
            except ValueError as exc:
                model, error = None, exc
            except Exception as exc:       # noqa: BLE001  (the point: nothing else escapes)
                pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
            slowest = max(slowest, time.thread_time() - start)
            peak_traced = max(peak_traced, tracemalloc.get_traced_memory()[1] - base_traced)
            if error is not None:
                assert str(error).startswith(prefix), (case, str(error))
                outcomes["refused"] += 1
                continue
            outcomes["loaded"] += 1
            if not original.built:
                # no arrays pin an unbuilt model's sizes: an edited document is a valid other
                # model (as a hand-written one would be); it must stay unbuilt
                assert not model.built, case
                continue
            assert _architecture(model) == _architecture(original), case
            x = X[:5] if model.input_shape == (6,) else X[:5].reshape(5, 2, 3)
            assert model.predict(x).shape == (5, model.output_shape[0])
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    print(f"{CASES} cases: {outcomes}, slowest load {slowest * 1e3:.1f} ms CPU, peak traced "
          f"{peak_traced / 2**20:.2f} MB, peak RSS growth {rss_growth / 2**20:.1f} MB")
    if CASES >= 300:      # every kind of mutation ran: some loads succeed, most are refused
        assert outcomes["loaded"] > 0 and outcomes["refused"] > CASES // 2
    assert slowest < 2.0   # CPU seconds of one load: a quadratic parse or a bomb, not load
    assert peak_traced < MEMORY_BOUND
    assert rss_growth < MEMORY_BOUND
