"""Measuring the inference paths of one model: each built, run on the guard's clips and timed, and the
:class:`Choice` that follows (:func:`measure`; :func:`choose_by_timings` where the timings are known).
:class:`~hf_w2v2.inference.optimize.FastModel` runs the choice and caches it.

Shape legend: B batch, T samples, F frames, V vocabulary.

Which path is fastest depends on the CPU (int8 dot products with VNNI or not, native bfloat16 or
emulated, AMX), on the model's size and on library versions, so nothing is guessed from flags: every
candidate (:mod:`hf_w2v2.inference.paths`) is built, checked and timed, interleaved (one call of each per
round, best of :data:`MEASURE_ROUNDS`: a busy machine slows them alike).

Two rankings, since a path's speed depends on whether it has met an input's shape before: OpenVINO
builds its kernels per input shape (on the shipped small model, 9-15 ms per new length: a 3 s clip took
17.7 ms at a new length and 6.4 ms at a known one), while eager torch paths on the length grid pay
little. So every path is timed on new lengths (what transcribing file after file meets) and on a
recurring one (long audio's full windows, a stream's partial windows, a benchmark's repeated clip).

The timings are kept per machine and architecture (the weights left out), since speed does not depend on
the weights but the guard does. A model of an architecture already timed on this machine (another
checkpoint, or the same one calibrated on other clips) is not timed again: its paths are built and guarded
fastest first only until one passes, for each ranking (:func:`choose_by_timings`; the shipped model on a
2-core Zen 5 EPYC: 12-23 s against 51-52 s; BASE: 20 s against 142 s). Each ranking is then that path and
fp32.

The accuracy guard (:class:`AccuracyGuard`): a path whose greedy CER on the guard's clips moves more than
:data:`MAX_CER_CHANGE` (absolute) from fp32's is never picked. With ``references`` (the clips' token ids)
that is the CER against them; without, the CER of its tokens against fp32's tokens (an upper bound on how
much its CER against any reference can move, so stricter). A path that cannot be built or run here is
reported with its reason; eager fp32 (:data:`FALLBACK`) is the reference and always last.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hf_w2v2.exits import interrupt_noticed
from hf_w2v2.inference.paths import Runner
from hf_w2v2.models.lengths import hop_length, receptive_field
from hf_w2v2.quiet import bars_wanted, library_notices_quieted
from hf_w2v2.text.error_rates import char_error_rate

logger = logging.getLogger(__name__)

MAX_CER_CHANGE = 0.005  # absolute greedy CER a fast path may add (tokens vs fp32's tokens)
MEASURE_SECONDS = 10.0  # the clip every path is timed on: the first input's first item, cut to this
MEASURE_ROUNDS = 3  # interleaved rounds, best of each path kept
CUT_DIVISOR = 64  # each round's input is 1/64 of the clip shorter than the last (10 s: 156 ms)
# How paths are timed, in every cache key: a ranking timed another way is measured again, not reused.
# 2: a new input length every round, eager CPU paths of frame-local models on the length grid.
# 3: as 2, every path timed again on a length it has met (the recurring ranking), a settling pause before
# each timed call, and new lengths at least one hop apart.
TIMING_METHOD = 3
# Idle time before each timed call. Backends' worker threads keep spinning after a call returns and slow
# whatever runs next: onnxruntime's for 20-50 ms (the shipped model's torch fp32 call right after one took
# 35-40 ms instead of 18), torch's OpenMP threads for 5-20 ms (onnxruntime after torch: 18 instead of 13.5
# ms). Interleaved without a pause, the path after another backend's was timed up to 2.4x too slow.
SETTLE_SECONDS = 0.05
RECURRING_ROUNDS = 2  # calls of each path on a length it has met, best kept
DROP_RATIO = 2.0  # after the first round, paths this many times slower than the best stop being timed
FALLBACK = "fp32"  # the eager model as given: never fails where the model itself works
# Loggers quieted while a path is built (the ONNX export quiets its own: export.EXPORT_NOTICE_LOGGERS):
# transformers says a CTC model's loss type is unknown when OpenVINO's tracer reads every attribute.
BUILD_NOTICE_LOGGERS = ("transformers.modeling_utils",)


@dataclass
class PathResult:
    """One candidate's outcome: seconds per call on the measuring clip (at new lengths, and at a length
    it has met), guard CER change, or why not."""

    name: str
    seconds: float | None = None
    seconds_recurring: float | None = None
    cer_change: float | None = None
    error: str | None = None


@dataclass
class Choice:
    """The rankings (fastest first, fp32 always last) at new input lengths (``ranking``) and at lengths
    already met (``recurring``; empty: the same), every candidate's result, and the kernels measured with
    them (:func:`~hf_w2v2.models.kernel_choice.measured_kernels`: a process that reads the choice takes them
    instead of timing the kernels again)."""

    ranking: list[str]
    results: list[PathResult] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    recurring: list[str] = field(default_factory=list)
    kernels: dict[str, dict[str, str]] = field(default_factory=dict)
    blind: bool = False  # its guard could check nothing (AccuracyGuard.blind): it serves its process, is not kept

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        """The choice ``asdict`` made ``data`` of (a cache file's JSON); KeyError, TypeError, ValueError or
        AttributeError where it is not one."""
        results = [PathResult(**r) for r in data["results"]]
        kept = data.get("kernels", {})  # kernel choices: environment variable -> setting -> kernel
        kernels = {str(env): {str(k): str(v) for k, v in chosen.items()} for env, chosen in kept.items()}
        recurring = list(data.get("recurring", []))
        choice = cls(list(data["ranking"]), results, data["fingerprint"], recurring, kernels, bool(data.get("blind")))
        if choice.ranking[-1:] != [FALLBACK] or not set(choice.ranking + choice.recurring) <= {r.name for r in results}:
            raise ValueError("rankings that do not end with fp32")
        return choice

    def ranking_for(self, recurring: bool) -> list[str]:
        """The ranking for an input of a new length, or of one met before (``recurring``)."""
        return self.recurring if recurring and self.recurring else self.ranking

    def first_paths(self) -> set[str]:
        """The paths that run while none fails: the first of each ranking."""
        return {self.ranking_for(False)[0], self.ranking_for(True)[0]}

    def drop(self, name: str) -> None:
        """Take a failed path out of both rankings (fp32 is never dropped)."""
        for ranking in (self.ranking, self.recurring):
            if name in ranking:
                ranking.remove(name)

    def rejected(self) -> list[str]:
        """The paths the accuracy guard rejected (they ran, and moved the greedy CER too far)."""
        return [r.name for r in self.results if r.error is not None and r.cer_change is not None]

    def failed(self) -> list[str]:
        """The paths that could not be built or run here (an error before the guard judged them)."""
        return [r.name for r in self.results if r.error is not None and r.cer_change is None]

    def speedup(self, name: str, recurring: bool = False) -> float | None:
        """fp32 seconds / ``name`` seconds on the measuring clip, at new lengths or a recurring one (None
        when either was not timed)."""
        times = {r.name: r.seconds_recurring if recurring else r.seconds for r in self.results}
        base, other = times.get(FALLBACK), times.get(name)
        return None if not base or not other else base / other


@dataclass(frozen=True)
class AccuracyGuard:
    """What a fast path must keep: its greedy CER on ``clips`` within ``max_cer_change`` (absolute) of fp32's.

    ``references``: token ids of each clip's transcript; then the CER against them is compared, else the
    CER of a path's tokens against fp32's tokens (stricter: an upper bound on the first)."""

    clips: Sequence[np.ndarray]
    max_cer_change: float = MAX_CER_CHANGE
    references: Sequence[Sequence[int]] | None = None

    def __post_init__(self) -> None:
        check_references(self.clips, self.references)

    @cached_property
    def reference_texts(self) -> list[str] | None:
        """The references as strings of one character per token id (for CER), made once."""
        return None if self.references is None else [token_text(r) for r in self.references]

    def change(self, tokens: list[str], fp32: list[str]) -> float:
        """Greedy CER change of ``tokens`` (one string per clip) from ``fp32``'s."""
        texts = self.reference_texts
        if texts is None:
            return char_error_rate(fp32, tokens) if any(fp32) else float(any(tokens))
        return abs(char_error_rate(texts, tokens) - char_error_rate(texts, fp32))

    def blind(self, fp32: list[str]) -> bool:
        """Whether the guard could check nothing: no references, fp32 gave no token on any clip (silence,
        noise, a warm-up call on zeros), and a finite bound. Every path that gives no token either passes."""
        return self.references is None and not any(fp32) and math.isfinite(self.max_cer_change)

    def rejects(self, change: float) -> str | None:
        """Why a path with this ``change`` is rejected, or None."""
        if change <= self.max_cer_change:
            return None
        against = "references" if self.references is not None else "fp32's tokens"
        return f"accuracy guard: greedy CER change {change:.4f} > {self.max_cer_change} ({against})"


def check_references(clips: Sequence[np.ndarray], references: Sequence[Sequence[int]] | None) -> None:
    """ValueError unless there is no reference or one per calibration clip."""
    if references is not None and len(references) != len(clips):
        raise ValueError(f"{len(references)} references for {len(clips)} calibration clips")


def token_text(ids: Sequence[int]) -> str:
    """Token ids as a string of one character each (for CER): printable, never whitespace."""
    return "".join(chr(0x4E00 + int(i)) for i in ids)


def greedy_tokens(logits: torch.Tensor, blank_id: int) -> str:
    """Greedy CTC output of ``(F, V)`` logits as :func:`token_text`."""
    ids = torch.unique_consecutive(logits.argmax(-1)).tolist()
    return token_text([i for i in ids if i != blank_id])


def measure(
    model: nn.Module,
    candidates: Sequence[str],
    guard: AccuracyGuard,
    probe: torch.Tensor,
    build: Any,
    built: dict[str, Runner],
) -> Choice:
    """Build, guard and time ``candidates`` (``build(name) -> runner``, kept in ``built``); fp32 is the reference.

    Paths the guard rejects are timed too (then let go): their timings serve models of the same
    architecture (:func:`choose_by_timings`), whose weights the guard may pass."""
    config: Any = model.config
    results = {name: PathResult(name) for name in candidates}
    reference = judge(FALLBACK, model, guard, build, built, results[FALLBACK], None)
    # Once per machine and model (BASE on 2 cores: about 2 minutes), so a bar shows what is being built.
    bar = tqdm(
        [n for n in candidates if n != FALLBACK],
        desc="inference paths: building and guarding",
        unit=" path",
        leave=False,
        disable=not bars_wanted(),
    )
    for name in bar:
        bar.set_postfix_str(name)
        judge(name, model, guard, build, built, results[name], reference)
    timed = [n for n in candidates if n in built]
    probe = probe[:, : int(MEASURE_SECONDS * int(getattr(config, "sampling_rate", 16_000)))]
    shortest = receptive_field(config.conv_kernel, config.conv_stride)
    best = time_paths({n: built[n] for n in timed}, probe, MEASURE_ROUNDS, shortest, hop_length(config.conv_stride))
    again = time_recurring({n: built[n] for n in timed}, probe, RECURRING_ROUNDS)
    for name in timed:
        results[name].seconds, results[name].seconds_recurring = best[name], again[name]
    passed = [n for n in timed if results[n].error is None]
    for name in timed:
        if results[name].error is not None:
            built.pop(name)  # rejected: timed only for the record
    return Choice(
        fastest_first({n: best[n] for n in passed}),
        list(results.values()),
        recurring=fastest_first({n: again[n] for n in passed}),
        blind=guard.blind(reference),
    )


def judge(
    name: str,
    model: nn.Module,
    guard: AccuracyGuard,
    build: Any,
    built: dict[str, Runner],
    result: PathResult,
    reference: list[str] | None,
) -> list[str]:
    """Build path ``name`` and run it on the guard's clips; ``result`` gets its CER change from
    ``reference`` (fp32's tokens; None: this is fp32) and the guard's verdict, or why it could not run
    (then it is not kept in ``built``). Returns its greedy tokens, one string per clip."""
    config: Any = model.config
    blank = int(config.pad_token_id if config.pad_token_id is not None else 0)
    try:
        # The backends' deprecation and export notices: nothing a user can act on.
        with warnings.catch_warnings(), library_notices_quieted(BUILD_NOTICE_LOGGERS):
            warnings.simplefilter("ignore")
            runner = build(name)
            with torch.inference_mode():
                tokens = [greedy_tokens(runner(torch.as_tensor(c)[None], None)[0], blank) for c in guard.clips]
    except Exception as err:  # a path that cannot run here is reported, not fatal
        if interrupt_noticed():  # a Ctrl-C the backend made its own error (OpenVINO's converter): not recorded
            raise KeyboardInterrupt from err
        if name == FALLBACK:
            raise
        result.error = f"{type(err).__name__}: {err}"
        logger.warning("inference path %s skipped: %s", name, result.error)
        built.pop(name, None)
        return []
    if reference is not None:
        result.cer_change = guard.change(tokens, reference)
        result.error = guard.rejects(result.cer_change)
        if result.error is not None:  # what the guard is for: the chooser warns where it matters
            logger.info("inference path %s rejected by the %s", name, result.error)
    return tokens


def choose_by_timings(
    model: nn.Module,
    timings: dict[str, Any],
    candidates: Sequence[str],
    guard: AccuracyGuard,
    build: Any,
    built: dict[str, Runner],
) -> Choice:
    """The rankings from ``timings`` (:meth:`FastModel._load_timings`: a model of the same architecture
    measured on this machine), building and guarding paths fastest first only until one passes, for new
    lengths and for recurring ones. Each ranking is that path, then fp32 (a later failure falls back to
    fp32). Paths that failed to build for that model are left out with its reason."""
    times, failed = timings["seconds"], timings["failed"]
    results = {name: PathResult(name) for name in candidates}
    reference = judge(FALLBACK, model, guard, build, built, results[FALLBACK], None)
    for name in candidates:
        if name in failed:
            results[name].error = f"failed for a model of the same architecture: {failed[name]}"
        if name in times:
            results[name].seconds, results[name].seconds_recurring = times[name]
    rankings = []
    for column in (0, 1):  # new lengths, recurring ones
        order = sorted((n for n in candidates if n in times), key=lambda n: times[n][column])
        ranking = []
        for name in order[: order.index(FALLBACK) + 1]:
            if name != FALLBACK and results[name].cer_change is None and results[name].error is None:
                judge(name, model, guard, build, built, results[name], reference)
            if results[name].error is None:
                ranking = [name] if name == FALLBACK else [name, FALLBACK]
                break
        rankings.append(ranking or [FALLBACK])
    for name in candidates:
        if results[name].error is None and results[name].cer_change is None and name != FALLBACK:
            results[name].error = "not built: slower than the chosen paths for a model of the same architecture"
        elif results[name].error is not None:
            built.pop(name, None)  # rejected by the guard: not kept
    return Choice(rankings[0], list(results.values()), recurring=rankings[1], blind=guard.blind(reference))


def fastest_first(seconds: dict[str, float]) -> list[str]:
    """Path names by time, cut after fp32 (which never falls back)."""
    ranking = sorted(seconds, key=seconds.__getitem__)
    return ranking[: ranking.index(FALLBACK) + 1]


def time_paths(
    runners: dict[str, Runner], probe: torch.Tensor, rounds: int, shortest: int = 1, step: int = 1
) -> dict[str, float]:
    """Best seconds per runner on ``probe``, interleaved, each call after :data:`SETTLE_SECONDS` idle; after
    one round, paths slower than :data:`DROP_RATIO` x the best are not timed again (their first time stands).

    Every round cuts ``probe`` shorter (:func:`shorter_cuts`): each timed call meets an input length no
    path has seen, as transcription does with every new file. A path that builds kernels for each shape
    pays for it here as it will there (on the shipped small model, OpenVINO int8 took 2.7x longer over 150
    clips met for the first time than over the same clips again; eager torch paths run on the length grid).
    No cut is shorter than ``shortest`` samples (the model's receptive field); each is at least ``step``
    shorter than the last (the model's hop: a new number of frames).
    """
    return interleaved_best(runners, probe, shorter_cuts(probe, rounds, shortest, step), drop=True)


def time_recurring(runners: dict[str, Runner], probe: torch.Tensor, rounds: int) -> dict[str, float]:
    """Best seconds per runner on ``probe`` once each has run it (its kernels built), interleaved, each
    call after :data:`SETTLE_SECONDS` idle: the speed at a recurring input length. Every path is timed
    (none dropped: a path slow on new lengths may be the fastest here)."""
    return interleaved_best(runners, probe, [probe] * rounds, drop=False)


def interleaved_best(
    runners: dict[str, Runner], warm_up: torch.Tensor, inputs: Sequence[torch.Tensor], drop: bool
) -> dict[str, float]:
    """Best seconds per runner over ``inputs`` (one round each: every runner once, in turn, after
    :data:`SETTLE_SECONDS` idle), after one untimed call of each on ``warm_up``. With ``drop``, a runner
    over :data:`DROP_RATIO` x the best after the first round is not timed again (its first time stands)."""
    best = dict.fromkeys(runners, float("inf"))
    with torch.inference_mode():
        for runner in runners.values():  # warm-up (oneDNN primitives, onnxruntime allocations)
            runner(warm_up, None)
        for round_, audio in enumerate(inputs):
            for name, runner in runners.items():
                if drop and round_ > 0 and best[name] > DROP_RATIO * min(best.values()):
                    continue
                time.sleep(SETTLE_SECONDS)
                start = time.perf_counter()
                runner(audio, None)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def shorter_cuts(probe: torch.Tensor, count: int, shortest: int = 1, step: int = 1) -> list[torch.Tensor]:
    """``count`` cuts of ``probe`` (B, T), the k-th shorter by k x T / :data:`CUT_DIVISOR` samples (at
    least ``step``), each a length the previous calls did not have; none under ``shortest`` samples
    (a probe that short gives cuts of one length, or itself).

    ``measure`` passes the model's hop as ``step``: cuts within one hop can keep the number of frames, and
    OpenVINO, which builds kernels per inner shape, then reuses most of them (on the shipped model, 10 s
    cut 7 samples at a time: 26 ms the first time, then 14-16; cut 331 at a time: 25-28 ms every time)."""
    length = probe.shape[1]
    step = max(step, length // CUT_DIVISOR)
    return [probe[:, : max(min(shortest, length), length - k * step)] for k in range(1, count + 1)]


def describe(choice: Choice) -> str:
    """One part per candidate: time at new lengths and at a recurring one, speed-ups over fp32, or why it
    was left out."""
    parts = []
    for r in choice.results:
        if r.error is not None:
            parts.append(f"{r.name}: {r.error}")
            continue
        part = f"{r.name}: {1000 * (r.seconds or 0):.0f} ms ({choice.speedup(r.name):.2f}x fp32)"
        if r.seconds_recurring is not None:
            again = choice.speedup(r.name, recurring=True)
            part += f", recurring {1000 * r.seconds_recurring:.0f} ms ({again:.2f}x)"
        parts.append(part)
    return "; ".join(parts)
