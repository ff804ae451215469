"""The child process in which :class:`~hf_w2v2.inference.optimize.FastModel` measures the inference paths.

Why another process: building the paths leaves memory behind in the process that builds them, and a
backend can take that process down while it builds. BASE on a 2-core Zen 5 EPYC: 3.0 GB RSS after a
measurement in the process against 1.0 GB in one that reads the cached choice (PT2E's export and compile
keep 0.75 GB, the ONNX export 0.57, OpenVINO's conversion 0.46); OpenVINO aborts the process on a Ctrl-C
inside its converter's callbacks, torch's package writer on a full disk. A server started with an empty
cache (every start of a container without a volume for it) kept that memory for its life, and a crash
while building took it down. Here the child measures and caches the choice
(:meth:`FastModel._measure_in_child`), and the parent reads it and builds only the chosen paths, from the
cached graphs.

``python -m hf_w2v2.inference.measure_child SPEC`` (``optimize.CHILD_CODE`` runs :func:`main` so, with the
libraries' import notices quieted first): ``SPEC`` is a ``torch.save`` file with the model (its class,
config and state dict: ours or stock transformers'), the settings, the cache folder, the thread count and the
first input.
The child measures in its own process (:data:`~hf_w2v2.inference.optimize.MEASURE_ENV` is ``for-parent``: in
its process, under the lock its parent holds) and
writes the cache files; its exit code says whether it measured (0). It also writes the choice to the spec's
``result`` file, where the parent finds a choice the cache did not keep (a disk nearly full, a guard that could
check nothing), instead of measuring again.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import asdict

import torch

from hf_w2v2.inference.optimize import optimize, write_json
from hf_w2v2.quiet import quiet_loading


def main(argv: Sequence[str]) -> int:
    """Measure what the spec file ``argv[0]`` describes and cache the choice; 0 when done."""
    spec = torch.load(argv[0], weights_only=False)  # our own file, written by the parent just now
    torch.set_num_threads(int(spec["threads"]))  # a fingerprint part: the parent's cache key needs it
    module, _, name = spec["model_class"].partition(":")
    model = getattr(importlib.import_module(module), name)(spec["config"])
    model.load_state_dict(spec["state"])  # strict: the parent's model exactly (its cache key hashes the weights)
    fast = optimize(
        model.eval(),
        precision=spec["precision"],
        cache=spec["cache"],
        max_cer_change=spec["max_cer_change"],
        length_grid=spec["length_grid"],
    )
    if spec["calibration"] is not None:  # as the parent has them, a run's first inputs or not (its cache key says)
        fast.set_calibration(spec["calibration"], spec["references"], spec["first_inputs"])
    with quiet_loading(not spec["bars"]):
        fast(spec["audio"])
    if fast.choice is not None:  # also where it was not kept (a disk nearly full, a blind guard): the parent runs it
        write_json(spec["result"], asdict(fast.choice))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
