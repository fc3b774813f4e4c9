import os
import signal

import numpy as np
import pytest

import nnfast

# Subprocesses started by tests (python -c, python -m nnfast) must import the same nnfast as
# this process, not the uncompiled source tree in the current directory.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.dirname(os.path.dirname(os.path.abspath(nnfast.__file__)))]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
os.environ["PYTHONSAFEPATH"] = "1"


def default_sigint() -> None:
    """preexec_fn for children that get Ctrl-C: SIGINT at its default, as in a terminal, even
    when pytest itself was started with it ignored (a job a shell runs in the background, some
    CI runners); Python then installs its KeyboardInterrupt handler at startup."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler (KeyboardInterrupt) for a test that sends itself SIGINT,
    whatever pytest was started with; the previous handler afterwards."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def threads():
    """Restores the process thread count after a test changes it."""
    before = nnfast.get_num_threads()
    yield nnfast.set_num_threads
    nnfast.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread():
    """nnfast on one thread for a whole module (tiny problems: threads only add
    synchronisation, badly so on a busy machine). Use with pytest.mark.usefixtures."""
    before = nnfast.get_num_threads()
    nnfast.set_num_threads(1)
    yield
    nnfast.set_num_threads(before)


@pytest.fixture(params=[
    pytest.param("c", marks=pytest.mark.skipif(not nnfast.backends.compiled_available(),
                                               reason="compiled extension not built")),
    "python"])
def backend(request):
    """Runs the test once per backend, with that backend active."""
    with nnfast.use_backend(request.param):
        yield request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_configure(config):
    if os.environ.get("NNFAST_REQUIRE_COMPILED") and not nnfast.backends.compiled_available():
        pytest.exit(f"NNFAST_REQUIRE_COMPILED is set but nnfast at {nnfast.__file__} has no "
                    "compiled extension (run pytest from an installed nnfast)", returncode=3)


def pytest_report_header(config):
    info = nnfast.info()
    return (f"nnfast {info['version']}: backend={info['backend']} compiled={info['compiled']} "
            f"openmp={info['openmp']} threads={info['threads']} path={info['kernel_path']} "
            f"at {os.path.dirname(nnfast.__file__)}")
