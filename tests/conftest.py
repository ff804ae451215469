"""Test-session settings.

One torch thread: the test models are tiny, and on a shared 2-core machine a second
thread mostly waits (a pre-training test took 70 s with two threads, 2.4 s with one).
"""

import torch

torch.set_num_threads(1)
