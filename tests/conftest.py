import numpy as np
import pytest

import nnfast


@pytest.fixture
def threads():
    """Restores the process thread count after a test changes it."""
    before = nnfast.get_num_threads()
    yield nnfast.set_num_threads
    nnfast.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_report_header(config):
    info = nnfast.info()
    return (f"nnfast {info['version']}: backend={info['backend']} compiled={info['compiled']} "
            f"openmp={info['openmp']} threads={info['threads']} path={info['kernel_path']}")
