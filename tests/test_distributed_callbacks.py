"""Callbacks in distributed fit (``mpirun -n 2``): only rank 0 prints the built-in callbacks'
messages, and a stop decided on one rank reaches every rank at the next step (or before the
next epoch) instead of leaving the others in the Allreduce until the watchdog fires.

Uses the launcher helpers of test_distributed.py (skipped without mpi4py or mpirun)."""
import json

import numpy as np
from test_distributed import _load_common, _mpirun, needs_mpi

STOPS = '''
import json
from mpi4py import MPI
from nnfast import callbacks as cb, distributed
rank, size = distributed.init()
x, y = data(128)          # global batch 2 * B = 32: 4 steps per epoch

class StopOnRank(cb.Callback):
    """Sets stop_training on one rank only, after a batch or after an epoch."""
    def __init__(self, who, epoch, batch=None):
        super().__init__()
        self.who, self.epoch, self.batch, self.current = who, epoch, batch, None
    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
    def on_train_batch_end(self, batch, logs=None):
        if rank == self.who and self.current == self.epoch and batch == self.batch:
            self.model.stop_training = True
    def on_epoch_end(self, epoch, logs=None):
        if rank == self.who and self.batch is None and epoch == self.epoch:
            self.model.stop_training = True

out = {}
for name, stopper in {"batch": StopOnRank(1, 1, batch=1), "epoch": StopOnRank(0, 0)}.items():
    m = model("adam")
    talkers = [cb.LearningRateScheduler(lambda e, lr: lr, verbose=1),
               cb.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, verbose=1),
               cb.EarlyStopping(monitor="loss", patience=5, verbose=1,
                                restore_best_weights=True)]
    h = m.fit(x, y, epochs=4, batch_size=B, shuffle=False, verbose=0, distributed=True,
              callbacks=[stopper] + talkers)
    same = all(np.array_equal(p, m._params) for p in MPI.COMM_WORLD.allgather(m._params))
    out[name] = {"epochs": h.epoch, "step": m._step, "same": same, "loss": h.history["loss"],
                 "params": m._params.tolist()}
out["nan"] = None
m = model("adam")

class Poison(cb.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            self.model._params[...] = np.nan
h = m.fit(x, y, epochs=3, batch_size=B, shuffle=False, verbose=0, distributed=True,
          callbacks=[Poison(), cb.TerminateOnNaN()])
out["nan"] = {"epochs": h.epoch, "step": m._step}
json.dump(out, open(f"stops{rank}.json", "w"))
'''


@needs_mpi
def test_only_rank_0_speaks_and_one_ranks_stop_stops_all(tmp_path):
    rc, output = _mpirun(tmp_path, STOPS, env={"NNFAST_DIST_TIMEOUT": "30"}, timeout=120)
    assert rc == 0, output
    ranks = [json.loads((tmp_path / f"stops{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    got = ranks[0]
    # stop after epoch 1's batch 1 on rank 1: every rank stops after that batch (4 + 2 steps),
    # the partial epoch is recorded; stop after epoch 0 on rank 0: one epoch everywhere
    assert (got["batch"]["epochs"], got["batch"]["step"], got["batch"]["same"]) == (
        [0, 1], 6, True)
    assert (got["epoch"]["epochs"], got["epoch"]["step"], got["epoch"]["same"]) == (
        [0], 4, True)
    assert (got["nan"]["epochs"], got["nan"]["step"]) == ([0], 3)
    # the same as one process with the global batch, stopped after the same batch
    c = _load_common(tmp_path)
    x, y = c.data(128)
    ref = c.model("adam")
    from nnfast import callbacks as cb

    class Stop(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model._step == 6:
                self.model.stop_training = True
    h = ref.fit(x, y, epochs=4, batch_size=2 * c.B, shuffle=False, verbose=0,
                callbacks=[Stop(), cb.EarlyStopping(monitor="loss", patience=5,
                                                    restore_best_weights=True)])
    assert h.epoch == [0, 1]
    np.testing.assert_allclose(got["batch"]["loss"], h.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(np.array(got["batch"]["params"], np.float32), ref._params,
                               rtol=1e-5, atol=1e-6)
    # one message per event for the whole job, not one per rank
    lines = output.splitlines()
    assert lines.count("Epoch 1: LearningRateScheduler setting learning rate to 0.01.") == 2
    assert lines.count("Epoch 2: LearningRateScheduler setting learning rate to 0.01.") == 1
    assert sum(line.startswith("Restoring model weights") for line in lines) == 2
    assert lines.count("Batch 2: Invalid loss, terminating training") == 1
