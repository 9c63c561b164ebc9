"""The engine's call lock lets a weight change go before Sample calls that were already waiting."""

import threading
import time
import unittest

from parley_engine.turn_lock import TurnLock


class TurnLockTest(unittest.TestCase):
    def test_priority_call_goes_before_waiting_samples(self):
        lock = TurnLock()
        order = []
        release = threading.Event()

        def first():
            with lock.hold(priority=False):
                order.append("sample-0")
                release.wait(5)

        def call(name, priority):
            with lock.hold(priority=priority):
                order.append(name)

        t0 = threading.Thread(target=first)
        t0.start()
        while not order:
            time.sleep(0.001)
        samples = [threading.Thread(target=call, args=(f"sample-{i}", False)) for i in range(1, 4)]
        for t in samples:
            t.start()
        time.sleep(0.05)  # the samples are waiting
        load = threading.Thread(target=call, args=("load", True))
        load.start()
        time.sleep(0.05)
        release.set()
        for t in [t0, load, *samples]:
            t.join(5)
        self.assertEqual(order[0], "sample-0")
        self.assertEqual(order[1], "load")
        self.assertEqual(sorted(order[2:]), ["sample-1", "sample-2", "sample-3"])

    def test_one_holder_at_a_time(self):
        lock = TurnLock()
        inside = []
        peak = []

        def work(priority):
            with lock.hold(priority=priority):
                inside.append(1)
                peak.append(len(inside))
                time.sleep(0.002)
                inside.pop()

        threads = [threading.Thread(target=work, args=(i % 3 == 0,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        self.assertEqual(max(peak), 1)
        self.assertEqual(len(peak), 24)


if __name__ == "__main__":
    unittest.main()
