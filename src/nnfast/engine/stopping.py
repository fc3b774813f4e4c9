"""How fit stops: the Ctrl-C flag, and the agreement of the ranks on a stop in distributed fit
(see nnfast/engine/training.py and docs/callbacks.md)."""
from __future__ import annotations

import signal
import threading


def stop_before_epoch(model, interrupt, dp) -> bool:
    """Stop before the next epoch? Distributed: one small collective so that a stop decided on
    one rank (a callback in on_epoch_end, Ctrl-C) stops all of them together."""
    if dp is not None:
        agreed_stop(model, interrupt, dp, dp.agree_stop(model.stop_training,
                                                         interrupt.requested))
    return model.stop_training or interrupt.requested


def agreed_stop(model, interrupt, dp, agreed=None) -> None:
    """Apply what the ranks agreed: stop training, or Ctrl-C on some rank."""
    stop, interrupted = agreed if agreed is not None else (dp.stop_requested, dp.interrupted)
    if interrupted:
        interrupt.requested = True
    elif stop:
        model.stop_training = True


def interrupted(epochs_done: int, dp) -> KeyboardInterrupt:
    """The KeyboardInterrupt fit raises after a Ctrl-C, once the running batch is done."""
    exc = KeyboardInterrupt(
        f"fit: interrupted (Ctrl-C) after {epochs_done} complete epoch(s); the model keeps the "
        f"weights of its last completed batch and model.history holds the completed epochs")
    if dp is not None:
        exc._nnfast_collective = True   # every rank raises it at the same step: no MPI abort
    return exc


class CtrlC:
    """While active in the main thread, the first Ctrl-C only sets ``requested`` (training stops
    after the current batch); a second one raises KeyboardInterrupt as usual.

    Only when SIGINT is handled by Python's own ``signal.default_int_handler`` (the handler
    that turns Ctrl-C into KeyboardInterrupt) is it replaced. A SIGINT that is ignored
    (``SIG_IGN``: a job a POSIX shell started in the background, ``nohup``, or the program's
    own choice) stays ignored, and a handler the program installed stays in charge: fit does
    not turn a signal the program chose not to receive as KeyboardInterrupt into a stop."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
                return self
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
