"""model.save / nnfast.load_model: round trips, atomic writes, and files that must be refused."""
import errno
import os
import re
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import _atomic as atomic_write
from nnfast import optimizers
from nnfast.engine import saving
from nnfast.layers import Dense, Dropout

X, Y = blobs()


def _trained(opt="adam", dropout=0.2, epochs=2):
    model = mlp(seed=3, dropout=dropout, compile_with=opt)
    model.fit(X, Y, epochs=epochs, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("opt", [
    "adam", optimizers.SGD(0.05, momentum=0.9, nesterov=True), optimizers.AdamW(clipnorm=2.0),
    optimizers.RMSprop(momentum=0.3), optimizers.Adagrad(0.05), optimizers.SGD(0.05),
], ids=lambda o: o if isinstance(o, str) else type(o).__name__)
def test_round_trip_predicts_identically_and_training_continues_identically(tmp_path, opt):
    model = _trained(opt)
    path = tmp_path / "model.nnf"
    model.save(path)
    loaded = nnfast.load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, Y) == model.evaluate(X, Y)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    h1 = model.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    h2 = loaded.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    assert h1.history == h2.history
    np.testing.assert_array_equal(loaded._params, model._params)


def test_round_trip_of_config_details(tmp_path):
    model = nnfast.Sequential([
        nnfast.layers.Flatten(input_shape=(2, 3)),
        Dense(5, "leaky_relu", alpha=0.2, kernel_initializer="he_normal",
              kernel_regularizer=nnfast.regularizers.L1L2(1e-3, 1e-4)),
        Dropout(0.25), Dense(4, use_bias=False), nnfast.layers.Activation("softmax")],
        dtype="float64", seed=11, name="custom")
    model.compile(optimizers.Adam(2e-3), nnfast.losses.CategoricalCrossentropy(0.1), ["acc"])
    x = np.random.default_rng(0).normal(size=(20, 2, 3))
    t = np.eye(4)[np.arange(20) % 4]
    model.fit(x, t, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    loaded = nnfast.load_model(tmp_path / "m")
    assert loaded.get_config() == model.get_config() and loaded.dtype == np.float64
    assert loaded.loss.label_smoothing == 0.1 and loaded.name == "custom"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_unbuilt_and_uncompiled_models_round_trip(tmp_path):
    bare = nnfast.Sequential([Dense(4, "relu"), Dense(2)])
    bare.save(tmp_path / "bare")
    loaded = nnfast.load_model(tmp_path / "bare")
    assert not loaded.built and loaded.loss is None and len(loaded.layers) == 2
    compiled = mlp()                    # declares its input: built at construction
    compiled.save(tmp_path / "c")
    loaded = nnfast.load_model(tmp_path / "c")
    assert loaded.built and loaded.loss.name == "sparse_categorical_crossentropy"
    np.testing.assert_array_equal(loaded._params, compiled._params)
    loaded.fit(X, Y, epochs=1, verbose=0)


@pytest.fixture(params=["unnamed", "named"])
def temp_kind(request, tmp_path, monkeypatch):
    """Both ways of writing the temporary file (nnfast/_atomic.py): unnamed
    (O_TMPFILE, where the file system and /proc or AT_EMPTY_PATH allow it) and named."""
    if request.param == "unnamed":
        if atomic_write._unnamed_linker(str(tmp_path)) is None:
            pytest.skip("no O_TMPFILE + linkat here")
    else:
        monkeypatch.setattr(atomic_write, "USE_UNNAMED", False)
    return request.param


def _fail_during_write(monkeypatch, exc):
    """np.save raises ``exc`` at the second array, after part of the zip is written."""
    calls = {"n": 0}
    real_save = np.save

    def failing_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise exc
        return real_save(*args, **kwargs)

    monkeypatch.setattr(saving.np, "save", failing_save)


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt(), MemoryError()],
                         ids=lambda e: type(e).__name__)
def test_an_interrupted_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch,
                                                                         temp_kind, exc):
    path = tmp_path / "model.nnf"
    model = _trained()
    model.save(path)
    good = path.read_bytes()
    model.fit(X, Y, epochs=1, verbose=0)
    with monkeypatch.context() as patch:
        _fail_during_write(patch, exc)
        with pytest.raises(type(exc)) as info:
            model.save(path)
    assert info.value is exc
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.nnf"]      # no temporary file left behind
    model.save(path)
    assert path.read_bytes() != good
    assert os.listdir(tmp_path) == ["model.nnf"]


def test_the_temporary_file_is_unnamed_or_unique_per_writer(tmp_path, monkeypatch, temp_kind):
    path = tmp_path / "model.nnf"
    seen = []
    real_save = np.save

    def looking_save(*args, **kwargs):
        seen.append(sorted(os.listdir(tmp_path)))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(saving.np, "save", looking_save)
    _trained().save(path)
    _trained().save(path)
    assert len(seen) == 6               # params, optimizer/m, optimizer/v: twice
    if temp_kind == "unnamed":          # the data is written before the file has a name
        assert seen == [[]] * 3 + [["model.nnf"]] * 3
    else:
        first, second = seen[0][0], seen[3][0]
        for name in (first, second):
            assert re.fullmatch(rf"\.model\.nnf\.{os.getpid()}\.[0-9a-f]{{12}}\.tmp", name)
        assert first != second
        assert seen == [[first]] * 3 + [sorted([second, "model.nnf"])] * 3
    assert os.listdir(tmp_path) == ["model.nnf"]


@pytest.mark.parametrize("umask, existing_mode, expected", [
    (0o022, None, 0o644), (0o077, None, 0o600), (0o002, None, 0o664), (0o077, 0o640, 0o640),
])
def test_files_honour_the_umask_and_replaced_files_keep_their_mode(tmp_path, temp_kind, umask,
                                                                  existing_mode, expected):
    path = tmp_path / "model.nnf"
    if existing_mode is not None:
        path.write_bytes(b"old")
        os.chmod(path, existing_mode)
    old = os.umask(umask)
    try:
        mlp().save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == expected


def test_save_errors_name_the_path_given(tmp_path):
    model = _trained()
    with pytest.raises(IsADirectoryError) as info:
        model.save(tmp_path)
    assert info.value.filename == str(tmp_path) and info.value.errno == errno.EISDIR
    assert str(info.value) == f"[Errno 21] Is a directory: {str(tmp_path)!r}"
    missing = tmp_path / "no" / "model.nnf"
    with pytest.raises(FileNotFoundError) as info:
        model.save(missing)
    assert info.value.filename == str(missing)
    assert str(info.value) == f"[Errno 2] No such file or directory: {str(missing)!r}"
    assert os.listdir(tmp_path) == []


def test_without_a_way_to_link_an_unnamed_file_the_temporary_is_named(tmp_path, monkeypatch):
    def cross_device(fd, name):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), name)

    monkeypatch.setattr(atomic_write, "_LINKERS", (cross_device,))
    monkeypatch.setattr(atomic_write, "_linker_by_device", {})
    assert atomic_write._unnamed_linker(str(tmp_path)) is None
    assert os.listdir(tmp_path) == []               # the probe left nothing
    seen = []
    real_save = np.save

    def looking_save(*args, **kwargs):
        seen.append(os.listdir(tmp_path))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(saving.np, "save", looking_save)
    _trained().save(tmp_path / "m.nnf")
    assert re.fullmatch(rf"\.m\.nnf\.{os.getpid()}\.[0-9a-f]{{12}}\.tmp", seen[0][0])
    assert os.listdir(tmp_path) == ["m.nnf"]


def test_save_refuses_a_model_that_load_model_would_refuse(tmp_path):
    model = nnfast.Sequential([Dense(2, input_dim=3)], seed=2**65)
    path = tmp_path / "m.nnf"
    with pytest.raises(ValueError) as info:
        model.save(path)
    assert str(info.value) == (
        f"save: cannot write {str(path)!r}: nnfast.load_model would refuse it: model.seed: "
        "integer 36893488147419103232 is out of range")
    assert os.listdir(tmp_path) == []
    long_name = nnfast.Sequential([Dense(2, input_dim=3, name="n" * 2000)])
    with pytest.raises(ValueError, match=r"model\.layers\[0\]\.config\.name: a string of 2000 "
                                         r"characters; at most 1024$"):
        long_name.save(path)


_CHILD = """
import sys, time
import numpy as np
import nnfast
from nnfast import _atomic as atomic_write
from nnfast.engine import saving
if sys.argv[2] == "named":
    atomic_write.USE_UNNAMED = False
model = nnfast.Sequential([nnfast.layers.Dense(64, input_dim=32), nnfast.layers.Dense(8)],
                          seed=int(sys.argv[3]))
model.build((32,))
if sys.argv[4] == "hang":
    real_save = np.save
    def hanging_save(*args, **kwargs):
        real_save(*args, **kwargs)
        print("writing", flush=True)
        time.sleep(60)
    saving.np.save = hanging_save
for _ in range(int(sys.argv[5])):
    model.save(sys.argv[1])
"""


def _child(path, kind, seed, mode, saves=1, **popen):
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(path), kind, str(seed), mode,
                             str(saves)], **popen)


def test_sigterm_during_save_keeps_the_old_file(tmp_path, temp_kind):
    path = tmp_path / "model.nnf"
    _trained().save(path)
    good = path.read_bytes()
    child = _child(path, temp_kind, 1, "hang", stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == -signal.SIGTERM
    finally:
        child.kill()
        child.stdout.close()
    assert path.read_bytes() == good
    left = sorted(set(os.listdir(tmp_path)) - {"model.nnf"})
    if temp_kind == "unnamed":
        assert left == []                  # the kernel freed the unnamed file
    else:
        # the documented residual: SIGTERM's default action runs no Python code, and a
        # library installs no handler; the name says which process left it
        assert len(left) == 1 and left[0].startswith(f".model.nnf.{child.pid}.")


def test_concurrent_saves_from_two_processes_both_succeed_and_one_wins_whole(tmp_path,
                                                                             temp_kind):
    path = tmp_path / "model.nnf"
    children = [_child(path, temp_kind, seed, "run", saves=15) for seed in (1, 2)]
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    assert os.listdir(tmp_path) == ["model.nnf"]
    loaded = nnfast.load_model(path)
    candidates = []
    for seed in (1, 2):
        model = nnfast.Sequential([Dense(64, input_dim=32), Dense(8)], seed=seed)
        model.build((32,))
        candidates.append(model._params)
    assert any(np.array_equal(loaded._params, c) for c in candidates)


# Files that must be refused: tests/test_model_file_checks.py (each field, exact messages) and
# tests/test_model_file_fuzz.py (mutated files).


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nnfast.load_model(tmp_path / "nothing.nnf")


# ---------------------------------------------------------------- symlinks and special files

def test_save_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    # open(path, "w") writes through links; so does save (issue #17 item 3)
    model = mlp(seed=1)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "target.nnf"
    target.write_bytes(b"old")
    link = tmp_path / "link.nnf"
    link.symlink_to(target)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert sorted(os.listdir(tmp_path / "real")) == ["target.nnf"]
    np.testing.assert_array_equal(nnfast.load_model(target).predict(X[:5], verbose=0),
                                  model.predict(X[:5], verbose=0))
    dangling = tmp_path / "dangling.nnf"
    dangling.symlink_to(tmp_path / "real" / "new.nnf")
    model.save(dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "new.nnf").is_file()


def test_save_refuses_a_fifo_or_device_and_leaves_it(tmp_path):
    fifo = tmp_path / "pipe.nnf"
    os.mkfifo(fifo)
    with pytest.raises(ValueError) as e:
        mlp(seed=1).save(fifo)
    assert str(e.value) == (f"{fifo}: is a FIFO (named pipe), not a regular file; it is not "
                            "replaced (files are written whole to a regular file, then renamed "
                            "into place)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(ValueError, match=r"^/dev/null: is a character device, not a regular"):
        mlp(seed=1).save("/dev/null")


def test_special_write_writes_a_fifo_directly(tmp_path):
    import threading

    fifo = str(tmp_path / "out.fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    with atomic_write.atomic_write(fifo, "w", "write", encoding="utf-8") as f:
        f.write("a,b\n")
    reader.join(10)
    assert got == [b"a,b\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert atomic_write.names_descriptor("/dev/stdout")
    assert not atomic_write.names_descriptor(str(tmp_path / "x"))
