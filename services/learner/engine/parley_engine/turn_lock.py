"""The engine's call lock: one call at a time, and calls that change the weights (Init, LoadWeights,
OptimStep, SaveWeights, ...) go before waiting Sample calls. A policy's engine serves a stream of Sample
batches; with a plain lock, whose order is arbitrary, a LoadWeights could wait behind many of them and the
replica would serve old weights for seconds while the run waits for the new version."""

import threading
from contextlib import contextmanager
from typing import Iterator


class TurnLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._priority_waiting = 0

    @contextmanager
    def hold(self, priority: bool) -> Iterator[None]:
        """Holds the lock for the block; a priority holder is let in before any waiting ordinary one."""
        with self._cond:
            if priority:
                self._priority_waiting += 1
                try:
                    while self._busy:
                        self._cond.wait()
                finally:
                    self._priority_waiting -= 1
            else:
                while self._busy or self._priority_waiting:
                    self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
