"""One kernel among equivalent ones, measured per machine and setting, or forced: :class:`KernelChoice`.

The feature encoder's convolutions (:func:`hf_w2v2.models.feature_encoder.inference_kernel`) and the
linear layers (:func:`hf_w2v2.models.linear_kernel.linear_kernel`) each have kernels that compute the
same thing at speeds that differ between CPUs. Each keeps one :class:`KernelChoice`: the timed choice
per setting for the life of the process, and a forced kernel from a ``with`` block (innermost wins) or
an environment variable (to reproduce a timing). :func:`best_times` is the one timer they share.

A process can hand its measured choices to another on the same machine (:func:`measured_kernels`,
:func:`remember_kernels`): :func:`hf_w2v2.inference.optimize` keeps them with its cached choice of path, so a
process that reads that choice does not time the kernels again (0.9 s of BASE's first call on a 2-core Zen 5).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Hashable, Iterator, Mapping

CHOICES: dict[str, KernelChoice] = {}  # every KernelChoice of this process, by its environment variable


class KernelChoice:
    """The kernels ``kernels`` of one operation: forced (``with choice.force(k)``, then ``$env``), else
    measured once per setting key by the caller's timing function."""

    def __init__(self, kernels: tuple[str, ...], env: str) -> None:
        self.kernels, self.env = kernels, env
        self._chosen: dict[Hashable, str] = {}  # per process: setting -> kernel
        self._forced: list[str] = []  # innermost force() last
        self._remembered: dict[str, str] = {}  # repr(setting) -> kernel another process measured (remember_kernels)
        CHOICES[env] = self

    def forced(self) -> str | None:
        """The kernel a ``force`` block or ``$env`` imposes, checked against :attr:`kernels`."""
        if self._forced:
            return self._forced[-1]
        value = os.environ.get(self.env)
        if value and value not in self.kernels:
            raise ValueError(f"{self.env}={value!r}: must be one of {', '.join(self.kernels)}")
        return value or None

    def forced_by_block(self) -> str | None:
        """The kernel of the innermost ``force`` block only (what a traced graph takes)."""
        return self._forced[-1] if self._forced else None

    def choose(self, key: Hashable, measure: Callable[[], str]) -> str:
        """The forced kernel, else the one ``measure()`` picked for ``key`` (measured on first use, unless
        another process's measurement of that setting was remembered)."""
        forced = self.forced()
        if forced:
            return forced
        if key not in self._chosen:
            self._chosen[key] = self._remembered.get(repr(key)) or measure()
        return self._chosen[key]

    @contextlib.contextmanager
    def force(self, kernel: str) -> Iterator[None]:
        """Within the block, ``kernel`` instead of the measured choice."""
        if kernel not in self.kernels:
            raise ValueError(f"kernel must be one of {', '.join(self.kernels)}, got {kernel!r}")
        self._forced.append(kernel)
        try:
            yield
        finally:
            self._forced.pop()

    def clear(self) -> None:
        """Forget the measured and remembered choices (the next call measures again)."""
        self._chosen.clear()
        self._remembered.clear()

    def measured(self) -> dict[str, str]:
        """This process's choices, by ``repr`` of their setting (what :meth:`remember` takes)."""
        return {repr(key): kernel for key, kernel in self._chosen.items()}

    def remember(self, chosen: Mapping[str, str]) -> None:
        """Choices :meth:`measured` in another process on this machine, used for settings not chosen here yet
        (a kernel this process does not have is ignored)."""
        self._remembered.update({key: kernel for key, kernel in chosen.items() if kernel in self.kernels})


def measured_kernels() -> dict[str, dict[str, str]]:
    """Every kernel choice this process measured: environment variable of the choice -> setting -> kernel."""
    return {env: choice.measured() for env, choice in CHOICES.items() if choice.measured()}


def remember_kernels(kernels: Mapping[str, Mapping[str, str]]) -> None:
    """Kernel choices another process measured on this machine (its :func:`measured_kernels`), taken where
    this process has not chosen yet; an unknown choice or kernel (another hf_w2v2 version) is ignored."""
    for env, chosen in kernels.items():
        if env in CHOICES:
            CHOICES[env].remember(chosen)


def best_times(runs: Mapping[str, Callable[[], object]], rounds: int, warm_up: bool = True) -> dict[str, float]:
    """Best seconds of each run over ``rounds`` interleaved rounds (one call of each per round), so a busy
    machine slows them alike; ``warm_up`` first calls each once untimed (oneDNN builds its primitives then)."""
    if warm_up:
        for run in runs.values():
            run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
