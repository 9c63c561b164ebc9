"""The engine tunes glibc's allocator at start unless the operator set MALLOC_* variables."""

import os
import unittest
from unittest import mock

from parley_engine.allocator import tune_allocator


class AllocatorTest(unittest.TestCase):
    def test_tunes_glibc_unless_malloc_variables_are_set(self):
        with mock.patch.dict(os.environ, {}, clear=False):
            for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX", "PARLEY_DEFAULT_ALLOCATOR"):
                os.environ.pop(k, None)
            self.assertTrue(tune_allocator())  # the test machines run glibc
        with mock.patch.dict(os.environ, {"MALLOC_ARENA_MAX": "2"}):
            self.assertFalse(tune_allocator())
        with mock.patch.dict(os.environ, {"PARLEY_DEFAULT_ALLOCATOR": "1"}):
            self.assertFalse(tune_allocator())


if __name__ == "__main__":
    unittest.main()
