"""Warnings nnfast emits inside fit / evaluate / predict and the estimators' fit name the user's
line (nnfast/_warn.py), not a line of the library (issue #17: they named
nnfast/callbacks/_base.py:128 and nnfast/sklearn/_base.py:132)."""
import warnings

import numpy as np
import pytest
from model_data import blobs, mlp

from nnfast import _warn
from nnfast import callbacks as cb

X, Y = blobs()


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = call()
    return caught, line


def _line():
    import inspect
    return inspect.currentframe().f_back.f_lineno


@pytest.mark.parametrize("callback", [cb.EarlyStopping(monitor="val_loss"),
                                      cb.ReduceLROnPlateau(monitor="val_loss"),
                                      cb.ModelCheckpoint("{epoch}.nnf", monitor="val_loss",
                                                         save_best_only=True, mode="min")])
def test_missing_monitor_warning_names_the_fit_call(callback, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = mlp()

    def call():
        line = _line() + 1
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[callback])
        return line

    caught, line = _caught(call)
    assert len(caught) == 1 and caught[0].category is RuntimeWarning
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_iterable_ran_out_names_the_predict_call():
    model = mlp()

    def call():
        line = _line() + 1
        model.predict(iter([X[:4]]), steps=3)
        return line

    caught, line = _caught(call)
    assert [str(w.message) for w in caught] == [
        "predict: Your input ran out of data: x ended before 3 steps"]
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_sklearn_convergence_warning_names_the_fit_call():
    sklearn = pytest.importorskip("sklearn")
    from nnfast.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)

    def call():
        line = _line() + 1
        clf.fit(X, Y)
        return line

    caught, line = _caught(call)
    assert [w.category for w in caught] == [sklearn.exceptions.ConvergenceWarning]
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_helper_outside_the_package_is_level_two():
    def call():
        line = _line() + 1
        _warn.warn("x", UserWarning)
        return line

    caught, line = _caught(call)
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    assert np.isfinite(line)
