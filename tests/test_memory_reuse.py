"""Freed memory is kept for reuse (glibc): a training step that allocates the
same arrays every time stops touching fresh pages (11 us per 4 KiB on the
development VMs) after its first run.  PYCNN_KEEP_FREED_MEMORY=0 restores
glibc's defaults, which is also how this test shows it can fail."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting applies to glibc only"),
    pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                       reason="AddressSanitizer's allocator replaces glibc's (the first CI pass runs this)"),
]

# The backward pair of a LeNet-5 layer (max-pool then ReLU, 2.4 MB arrays):
# page faults over 20 steps after a warm-up.
STEP_FAULTS = """
import resource
import numpy as np
from pycnn import ops

x = np.random.default_rng(0).random((128, 28, 28, 6), dtype=np.float32)
dy = np.ones((128, 14, 14, 6), np.float32)

def step():
    return ops.relu_backward(ops.max_pool2d_backward(dy, x, 2), x)

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(keep):
    env = dict(os.environ, PYCNN_KEEP_FREED_MEMORY=keep)
    out = subprocess.run([sys.executable, "-c", STEP_FAULTS], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return int(out.stdout.split()[-1])


def test_repeated_steps_reuse_their_pages():
    # One step's arrays are 2 x 588 pages: kept memory faults in (almost) none of them again.
    assert _faults("1") < 100


def test_opting_out_restores_fresh_pages_each_step():
    assert _faults("0") > 2000
