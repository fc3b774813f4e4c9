"""A SIGTERM or Ctrl-C that arrives while fit builds its progress bar is delivered after the
bar is whole (engine/training.py _bar): raised inside tqdm's __init__ it left a half-built bar
whose __del__ failed later ("'tqdm_asyncio' object has no attribute 'pos'") and printed that
traceback after the CLI's "interrupted" message (seen in tests/test_cli.py's SIGTERM test)."""
import os
import signal
import sys

import pytest

from nnfast.engine import training

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM here")


class _Stop(BaseException):
    pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_bars_constructor_lands_after_it(monkeypatch, sig):
    import tqdm.auto

    built = []

    class Bar:
        def __init__(self, **kwargs):
            os.kill(os.getpid(), sig)   # arrives in the middle of the constructor
            for _ in range(1000):       # bytecodes where a handler would otherwise run
                pass
            self.pos = 0
            built.append(self)

    def handler(signum, frame):
        raise _Stop(signum)

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    previous = signal.signal(sig, handler)
    try:
        with pytest.raises(_Stop) as info:
            training._bar(10, "x")
            for _ in range(1000):       # the pending signal is delivered here at the latest
                pass
    finally:
        signal.signal(sig, previous)
    assert info.value.args == (sig,)
    assert len(built) == 1 and built[0].pos == 0
    # the handler is back: a later signal reaches it at once
    assert signal.getsignal(sig) is handler or signal.getsignal(sig) is previous
    assert sys.exc_info() == (None, None, None)


def test_the_handlers_are_put_back_when_nothing_arrived(monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", lambda **kwargs: kwargs)
    before = {s: signal.getsignal(s) for s in training._SIGNALS}
    assert training._bar(3, "y")["total"] == 3
    assert {s: signal.getsignal(s) for s in training._SIGNALS} == before
