"""The Keras 3 metrics under MPI: their sufficient statistics are reduced with the loss, so two
ranks report what one process reports (fit with twice the batch, evaluate)."""
from __future__ import annotations

import json

import numpy as np
from test_distributed import _load_common, _mpirun, needs_mpi

SETUP = '''
from nnfast import metrics


def metric_model():
    m = nnfast.Sequential([layers.Dense(8, "tanh", input_dim=12), layers.Dense(3, "softmax")],
                          seed=1)
    m.compile(optimizers.SGD(0.1), "categorical_crossentropy",
              ["auc", metrics.F1Score("macro"), "precision", metrics.AUC(curve="PR", name="pr"),
               "top_k_categorical_accuracy", "f1_score"])
    return m


def metric_data():
    x, labels = data(150)
    return x, np.eye(3, dtype=np.float32)[labels]
'''

BODY = '''
import json
from nnfast import distributed
rank, size = distributed.init()
x, y = metric_data()
m = metric_model()
h = m.fit(x, y, epochs=2, batch_size=B, validation_data=(x[:60], y[:60]), shuffle=False,
          verbose=0, distributed=True)
ev = m.evaluate(x, y, batch_size=7, distributed=True)
if rank == 0:
    def plain(d):
        return {k: np.asarray(v).tolist() for k, v in d.items()}
    with open("metrics.json", "w") as f:
        json.dump({"history": plain(h.history), "evaluate": plain(ev)}, f)
'''


@needs_mpi
def test_two_ranks_report_the_metrics_of_one_process(tmp_path):
    rc, output = _mpirun(tmp_path, SETUP + BODY)
    assert rc == 0, output
    got = json.loads((tmp_path / "metrics.json").read_text())
    c = _load_common(tmp_path)
    ns = {"np": np, "nnfast": c.nnfast, "layers": c.layers, "optimizers": c.optimizers,
          "data": c.data}
    exec(SETUP, ns)   # noqa: S102  (the fixed text above)
    x, y = ns["metric_data"]()
    ref = ns["metric_model"]()
    h = ref.fit(x, y, epochs=2, batch_size=2 * c.B, validation_data=(x[:60], y[:60]),
                shuffle=False, verbose=0)
    assert set(got["history"]) == set(h.history) and "val_pr" in h.history
    for key, values in h.history.items():
        np.testing.assert_allclose(np.array(got["history"][key], dtype=float),
                                   np.array([np.asarray(v) for v in values], dtype=float),
                                   rtol=2e-5, atol=1e-6, err_msg=key)
    for key, value in ref.evaluate(x, y, batch_size=7).items():
        np.testing.assert_allclose(got["evaluate"][key], value, rtol=2e-5, atol=1e-6,
                                   err_msg=key)
