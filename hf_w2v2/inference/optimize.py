"""The fastest inference path for this machine and model, chosen by measurement: :func:`optimize`.

Shape legend: B batch, T samples, F frames, V vocabulary.

On first use every candidate path (:mod:`hf_w2v2.inference.paths`) is built, guarded and timed
(:mod:`hf_w2v2.inference.measurement`: how, and the two rankings, for new input lengths and recurring ones),
and the choice is cached per machine and model (:mod:`hf_w2v2.inference.machine`: the key) with the kernels
measured with it. A later process reads it, builds only the chosen paths, and removes the graphs of the
others. The guard clips are the ``calibration`` clips, or, without them, the first input; the static int8
paths need calibration clips and are skipped without them. Clips that are only a run's first inputs (a
transcriber's first files) are keyed as such, not by their content, so a run on other files reads the choice.

:class:`FastModel` runs it: an input whose shape it has met before runs on the fastest path for recurring
lengths, a first-seen one on the fastest for new lengths; both passed the guard, so the same input may move
by a guarded amount between its first and later calls (``precision="fp32"`` or a named path is fixed). A
path that fails at a later call is logged with its reason and the next one in the ranking runs; eager fp32
is always last.

On the CPU the measurement runs in a child process (:mod:`hf_w2v2.inference.measure_child`), which caches the
choice; this process reads it and builds only the chosen paths: the memory the builders keep (BASE: 2 GB) and
a backend's crash while building go with the child. ``HF_W2V2_MEASURE=process`` measures in this process.
A process that starts while another measures the same model on the same cache waits for that choice
(:data:`MEASURING_LOCK`) rather than measure the same paths on the same cores at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from hf_w2v2.exits import interrupt_noticed, interrupts_noticed
from hf_w2v2.files import MB, lock_exclusively, remove_stale_partials, space_short, write_text
from hf_w2v2.inference.batching import check_length
from hf_w2v2.inference.machine import CACHE_ENV, cache_dir, cache_key, graph_bytes, machine_fingerprint, speed_key
from hf_w2v2.inference.measurement import (
    FALLBACK,
    MAX_CER_CHANGE,
    TIMING_METHOD,
    AccuracyGuard,
    Choice,
    PathResult,
    check_references,
    choose_by_timings,
    describe,
    measure,
)
from hf_w2v2.inference.paths import (
    CPU_PATHS,
    GPU_PATHS,
    GRAPH_FILES,
    Runner,
    build_path,
    graph_files,
    on_grid,
    uses_grid,
)
from hf_w2v2.models.kernel_choice import measured_kernels, remember_kernels
from hf_w2v2.quiet import bars_wanted

logger = logging.getLogger(__name__)

MEASURE_ENV = "HF_W2V2_MEASURE"  # "process": measure in this process, not in a child (measure_child: why)
FOR_PARENT = "for-parent"  # MEASURE_ENV of a measuring child: in its process, under its parent's lock
# In a model's graphs folder: held by the process measuring its paths (files.lock_exclusively); another that
# starts meanwhile waits for that choice instead of measuring the same paths on the same cores at once.
MEASURING_LOCK = ".measuring.lock"
# The child's program: the libraries' import notices quieted before anything imports them, as the CLI does.
CHILD_CODE = (
    "import sys; from hf_w2v2.quiet import quiet_import_notices; quiet_import_notices(); "
    "from hf_w2v2.inference.measure_child import main; sys.exit(main(sys.argv[1:]))"
)
SEEN_SHAPES = 4096  # input shapes FastModel remembers to tell a recurring length from a new one


def as_runner_input(
    input_values: torch.Tensor | np.ndarray, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    audio = torch.as_tensor(input_values, dtype=torch.float32)
    return (audio[None] if audio.ndim == 1 else audio), attention_mask


class FastModel:
    """``fast(input_values, attention_mask=None).logits`` like the model, on the chosen path.

    An input of a shape met before (among the last :data:`SEEN_SHAPES`) runs on the fastest path for
    recurring lengths, any other on the fastest for new ones (:attr:`calls` counts the calls per path).
    Every other attribute (``config``, ``frame_lengths``, ``parameters``...) is the model's.
    """

    def __init__(
        self,
        model: nn.Module,
        precision: str,
        calibration: Sequence[np.ndarray] | None,
        cache: str | None,
        max_cer_change: float = MAX_CER_CHANGE,
        references: Sequence[Sequence[int]] | None = None,
        length_grid: bool = True,
    ) -> None:
        self.model = model.eval()
        self.length_grid = length_grid
        self.max_cer_change = max_cer_change
        self.references = None if references is None else [list(map(int, r)) for r in references]
        self.precision = precision
        self.calibration = None if calibration is None else [np.asarray(c, np.float32) for c in calibration]
        self.first_inputs = False  # the calibration clips are a run's first inputs (:meth:`set_calibration`)
        self.cache = cache
        self.device = next(model.parameters()).device
        self.choice: Choice | None = None
        self.runners: dict[str, Runner] = {}
        self.seen: OrderedDict[tuple[tuple[int, ...], bool], None] = OrderedDict()  # shape, masked
        self.calls: Counter[str] = Counter()
        self._seen_lock = threading.Lock()  # the server calls one model from several threads
        self._choice_lock = threading.Lock()
        self._folder: str | None = None  # the cache folder in use (:meth:`_root`)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None  # where it could not be used
        self._artifact_folders: dict[str, str] = {}  # graphs' folder in the cache -> the one used (:meth:`_artifacts`)
        self._held = threading.local()  # this thread's cache key within a :meth:`_key_held` block (:meth:`_key`)

    def __getattr__(self, name: str) -> Any:  # only called for what FastModel itself lacks
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def chosen(self) -> str | None:
        """The path that runs an input of a new length now (None before the first call)."""
        return None if self.choice is None else self.choice.ranking_for(False)[0]

    @property
    def chosen_recurring(self) -> str | None:
        """The path that runs an input of a length met before now (None before the first call)."""
        return None if self.choice is None else self.choice.ranking_for(True)[0]

    def set_calibration(
        self,
        clips: Sequence[np.ndarray],
        references: Sequence[Sequence[int]] | None = None,
        first_inputs: bool = False,
    ) -> None:
        """Calibration clips for a choice not made yet, and the token ids of their transcripts when known (the
        guard then bounds the CER change against them).

        ``first_inputs``: the clips are whatever a run met first (the first files a transcriber reads), not a
        set chosen to calibrate: the choice is then cached for the model and machine whatever the clips, as
        without calibration (where the first input guards it), and a run on other files reads it instead of
        measuring again (a choice keyed by the clips made every ``hf-w2v2 transcribe --precision auto`` on new
        files measure anew: 51 s for the shipped model on a 2-core Zen 5, minutes for BASE)."""
        if self.choice is None and self.calibration is None:
            check_calibration_clips(self.model, clips, references)
            self.calibration = [np.asarray(c, np.float32) for c in clips]
            if references is not None:
                self.references = [list(map(int, r)) for r in references]
            self.first_inputs = first_inputs

    def __call__(
        self, input_values: torch.Tensor | np.ndarray, attention_mask: torch.Tensor | None = None, **_: Any
    ) -> CausalLMOutput:
        audio, mask = as_runner_input(input_values, attention_mask)
        with interrupts_noticed(), self._key_held():  # interrupts_noticed: a Ctrl-C a backend turns into its error
            return self._call(audio, mask)  # is not a failure of the path

    def _call(self, audio: torch.Tensor, mask: torch.Tensor | None) -> CausalLMOutput:
        if self.choice is None:
            with self._choice_lock:  # two first calls at once (a server's workers): one measures, the other waits
                if self.choice is None:
                    with torch.inference_mode(False), torch.no_grad():  # exporters refuse inference mode
                        self.choice = self._choose(audio.clone())
                    # The other paths' runners, built to be measured: BASE held 4.5 GB after the measurement
                    # with them, 3.0 without. A chosen path that fails later is followed by the next, rebuilt
                    # then (from the cache's graphs where it has them).
                    for name in set(self.runners) - self.choice.first_paths() - {FALLBACK}:
                        del self.runners[name]
        for name in list(self.choice.ranking_for(self._recurs(audio, mask))):
            try:
                runner = self._runner(name)
                with torch.inference_mode():
                    logits = runner(audio, mask)
                self.calls[name] += 1
                return CausalLMOutput(logits=logits)
            except Exception as err:  # any backend failure: log it, run the next path
                if interrupt_noticed():
                    raise KeyboardInterrupt from err
                if name == FALLBACK:
                    raise
                logger.warning("inference path %s failed (%s: %s); running the next one", name, type(err).__name__, err)
                self.choice.drop(name)
                self.runners.pop(name, None)
        raise RuntimeError("no inference path left")  # unreachable: fp32 re-raises

    def _recurs(self, audio: torch.Tensor, mask: torch.Tensor | None) -> bool:
        """Whether this input's shape was met before (then remembered as the latest)."""
        key = (tuple(audio.shape), mask is not None)
        with self._seen_lock:
            recurring = key in self.seen
            self.seen[key] = None
            self.seen.move_to_end(key)
            if len(self.seen) > SEEN_SHAPES:
                self.seen.popitem(last=False)
        return recurring

    def _runner(self, name: str) -> Runner:
        """Path ``name``, built once; eager CPU paths of a frame-local model run on the length grid."""
        if name not in self.runners:
            runner = build_path(name, self.model, self.calibration, self._artifacts())
            grid = self.length_grid and uses_grid(self.model, name)
            self.runners[name] = on_grid(runner, self.model) if grid else runner
        return self.runners[name]

    def _root(self) -> str:
        """The cache folder (``cache``, or :func:`~hf_w2v2.inference.machine.cache_dir`). Where it cannot be
        made or written (a read-only home in a container) and holds no choice for this model, a temporary
        folder for this process instead, with a warning: nothing is kept for next time, nothing fails. A
        read-only cache that holds the choice (built into an image) is read as it is."""
        if self._folder is None:
            root = self.cache or cache_dir()
            try:
                os.makedirs(root, exist_ok=True)
                reason = None if os.access(root, os.W_OK) else "not writable"
            except OSError as err:
                reason = f"{type(err).__name__}: {err}"
            if reason is None or os.path.isfile(os.path.join(root, f"{self._key()}.json")):
                self._folder = root
            else:
                self._folder = self._scratch_folder(f"cache folder {root} cannot be used ({reason})")
        return self._folder

    def _scratch_folder(self, why: str) -> str:
        """A temporary folder for this process (removed with it), made once, with a warning saying ``why``."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="hf_w2v2-optimize-")
            logger.warning(
                "%s: paths are built in %s for this process only; set %s to a writable folder to keep them",
                why,
                self._scratch.name,
                CACHE_ENV,
            )
        return self._scratch.name

    def _artifacts(self) -> str:
        """The folder of this model's graphs; made, and rid of partial files of builds killed before they
        ended (:func:`~hf_w2v2.files.remove_stale_partials`), at its first use in this process."""
        wanted = folder = os.path.join(self._root(), self._key())
        if wanted not in self._artifact_folders:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as err:  # a read-only cache with this model's choice but not its graphs
                folder = os.path.join(self._scratch_folder(f"cannot write {folder} ({err})"), self._key())
                os.makedirs(folder, exist_ok=True)
            removed = remove_stale_partials(folder)
            if removed:
                logger.info("removed %d partial files of builds that did not end: %s", len(removed), ", ".join(removed))
            self._artifact_folders[wanted] = folder
        return self._artifact_folders[wanted]

    def _key(self) -> str:
        """The cache key of this model, calibration and guard on this machine. It hashes every weight (0.2 s for
        BASE on a 2-core Zen 5, 0.65 s for LARGE): once per :meth:`_key_held` block, where one call may need it
        several times (the cached choice, the folder of its graphs); anew in the next, as weights may change."""
        held = getattr(self._held, "key", None)
        if held is not None:
            return held
        guard = f"{self.precision} guard {self.max_cer_change} references {self.references}"
        guard += f" timing {TIMING_METHOD} grid {self.length_grid}"
        if self.first_inputs:  # not the clips themselves: a run on other files reads this choice
            guard += " calibrated on the first inputs of a run"
        key = cache_key(self.model, self.device, None if self.first_inputs else self.calibration, guard)
        if getattr(self._held, "depth", 0):
            self._held.key = key
        return key

    @contextlib.contextmanager
    def _key_held(self) -> Iterator[None]:
        """Within the block (one call of this thread: nothing changes the weights meanwhile), :meth:`_key`
        hashes the weights at most once, when first asked."""
        self._held.depth = getattr(self._held, "depth", 0) + 1
        try:
            yield
        finally:
            self._held.depth -= 1
            if not self._held.depth:
                self._held.key = None

    def _choose(self, audio: torch.Tensor) -> Choice:
        cached = self._load_cached(remove_unchosen=True)
        if cached is not None:
            logger.info(
                "inference path %s (cached ranking %s; recurring lengths %s)",
                cached.ranking[0],
                " > ".join(cached.ranking),
                " > ".join(cached.ranking_for(True)),
            )
            self._warn_if_refused(cached)
            return cached
        mode = os.environ.get(MEASURE_ENV, "child")
        if mode == FOR_PARENT:  # a measuring child: its parent holds the lock
            return self._measure_here(audio)
        waited: list[bool] = []

        def waiting() -> None:
            logger.info("another process is measuring the inference paths of this model here: waiting for its choice")
            waited.append(True)

        with lock_exclusively(os.path.join(self._artifacts(), MEASURING_LOCK), waiting):
            cached = self._load_cached() if waited else None
            if cached is not None:
                self._report(cached, "measured by another process")
                return cached
            if self.device.type == "cpu" and mode != "process":
                measured = self._measure_in_child(audio)
                if measured is not None:
                    return measured
            return self._measure_here(audio)

    def _measure_here(self, audio: torch.Tensor) -> Choice:
        """Build, guard and time the candidates in this process; the choice is cached unless :meth:`_not_kept`."""
        candidates = self._candidates()
        if self.calibration:
            guard = AccuracyGuard(self.calibration, self.max_cer_change, self.references)
        else:  # the first input, compared with fp32's tokens
            guard = AccuracyGuard([row.numpy() for row in audio], self.max_cer_change)
        timings_file = self._timings_file()
        timings = self._load_timings(timings_file, candidates)
        if timings is not None:
            choice = choose_by_timings(self.model, timings, candidates, guard, self._runner, self.runners)
            source = f"timings of a model of the same architecture on this machine ({timings_file})"
        else:
            choice = measure(self.model, candidates, guard, audio[:1], self._runner, self.runners)
            source = "measured"
        choice.fingerprint = machine_fingerprint(self.device)
        choice.kernels = measured_kernels()
        short = self._space_short(choice)
        if timings is None and short is None:
            self._save_timings(timings_file, choice, candidates)  # speeds: whatever the guard's clips said
        why = self._not_kept(choice, short)
        if why is None:
            self._save(choice)
        else:
            logger.warning(why)
        self._report(choice, source)
        return choice

    def _report(self, choice: Choice, source: str) -> None:
        """The INFO line of a choice just made (``source``: how), and the warning where a path asked for by
        name was refused."""
        logger.info(
            "inference path %s (new input lengths), %s (recurring ones), %s; %s",
            choice.ranking[0],
            choice.ranking_for(True)[0],
            source,
            describe(choice),
        )
        self._warn_if_refused(choice)

    def _measure_in_child(self, audio: torch.Tensor) -> Choice | None:
        """The choice measured by a child process (:mod:`hf_w2v2.inference.measure_child`: why), read from the
        cache, or from the child's result file where the cache did not keep it; None where it made none (measured
        in this process then, with the reason logged). A child that dies of a signal leaves this process on fp32,
        with a warning (not kept: the next start measures again)."""
        model: Any = self.model
        spec = {
            "model_class": f"{type(model).__module__}:{type(model).__qualname__}",  # ours or stock transformers'
            "config": model.config,
            "state": model.state_dict(),  # (weight norm's parametrisation does not pickle as a module)
            "precision": self.precision,
            "calibration": self.calibration,
            "first_inputs": self.first_inputs,
            "references": self.references,
            "max_cer_change": self.max_cer_change,
            "length_grid": self.length_grid,
            "cache": self._root(),
            "audio": audio,
            "threads": torch.get_num_threads(),
            "bars": bars_wanted(),
        }
        command = [sys.executable, "-c", CHILD_CODE]
        with tempfile.TemporaryDirectory(prefix="hf_w2v2-measure-") as folder:
            path, spec["result"] = os.path.join(folder, "spec.pt"), os.path.join(folder, "choice.json")
            try:
                torch.save(spec, path)
            except Exception as err:  # a config that does not pickle: measured here
                why = f"{type(err).__name__}: {err}"
                logger.info("measuring in this process: the model cannot be handed to another (%s)", why)
                return None
            env = {**os.environ, MEASURE_ENV: FOR_PARENT}
            try:
                done = subprocess.run([*command, path], env=env, stdout=subprocess.DEVNULL, check=False)
            except OSError as err:  # no Python to start (an interpreter embedded in another program)
                logger.info("measuring in this process: %s cannot start a child (%s)", sys.executable, err)
                return None
            cached = self._load_cached() if done.returncode == 0 else None
            if cached is not None:
                self._report(cached, "measured in a child process")
                return cached
            made = read_json(spec["result"]) if done.returncode == 0 else None
        if made is not None:  # a choice it did not keep (a disk nearly full, a guard that checked nothing)
            with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
                choice = Choice.from_dict(made)
                remember_kernels(choice.kernels)
                not_kept = self._not_kept(choice, self._space_short(choice))
                if not_kept is not None:  # (the child's own warning went to its log, not the caller's)
                    logger.warning(not_kept)
                self._report(choice, "measured in a child process, not kept")
                return choice
        if done.returncode >= 0:  # an error it reported: measured here
            logger.info("measuring in this process: the child process made no choice (exit code %d)", done.returncode)
            return None
        logger.warning(
            "measuring the inference paths killed the child process that did it (%s): running fp32 in this process; "
            "the next start measures again",
            signal.Signals(-done.returncode).name,
        )
        return Choice([FALLBACK], [PathResult(FALLBACK)])

    def _not_kept(self, choice: Choice, short: str | None) -> str | None:
        """Why ``choice`` serves this process only and is not cached (None: it is). ``short``: why the cache's
        disk may have failed some paths (:meth:`_space_short`), a failure of this moment, not of the paths:
        kept, it would leave them out for good. A guard that could check nothing (:attr:`Choice.blind`) would
        keep an unchecked path for every later start."""
        if short is not None:
            return (
                f"inference paths {', '.join(choice.failed())} could not be built with the cache's disk nearly full "
                f"({short}): this choice serves this process and is not kept; free some space (or set {CACHE_ENV}) "
                "and the next start measures again"
            )
        if choice.blind and choice.first_paths() != {FALLBACK}:
            return (
                "fp32 gave no token on the accuracy guard's clips (silence, noise, a warm-up on zeros?), so no path "
                "could be checked: this choice serves this process and is not kept, and the next start measures "
                "again; calibrate on recordings of speech (optimize(calibration=...), --calibration) to keep one"
            )
        return None

    def _space_short(self, choice: Choice) -> str | None:
        """Why the cache folder's disk may be what failed some paths (None: nothing failed, or it has the space a
        path's graph needs: :func:`~hf_w2v2.files.space_short`)."""
        if not choice.failed():
            return None
        return space_short(self._artifacts(), graph_bytes(self.model))

    def _warn_if_refused(self, choice: Choice) -> None:
        """A warning when the path asked for by name runs as fp32 instead, with why (under ``auto``, paths
        the guard rejects are the choice working: logged at INFO by :func:`~hf_w2v2.inference.measurement.judge`)."""
        if self.precision in ("auto", FALLBACK) or choice.ranking[0] != FALLBACK:
            return
        why = next((r.error for r in choice.results if r.name == self.precision), None) or "slower than fp32"
        logger.warning("precision %s not used (%s): running fp32", self.precision, why)

    def _candidates(self) -> list[str]:
        names = list(GPU_PATHS if self.device.type == "cuda" else CPU_PATHS)
        if self.precision != "auto":
            return [FALLBACK] if self.precision == FALLBACK else [self.precision, FALLBACK]
        if not self.calibration:
            skipped = [n for n in names if n.endswith("static")]
            if skipped:
                logger.info("no calibration clips: static int8 paths (%s) skipped", ", ".join(skipped))
            names = [n for n in names if not n.endswith("static")]
        return names

    def _cache_file(self) -> str:
        return os.path.join(self._root(), f"{self._key()}.json")

    def _load_cached(self, remove_unchosen: bool = False) -> Choice | None:
        """The cached choice (None: none, another machine's, or unreadable); ``remove_unchosen``: the graphs of
        the paths it does not run are removed (:meth:`_remove_unchosen_graphs`)."""
        path = self._cache_file()
        data = read_json(path)
        if data is None:
            return None
        if data.get("fingerprint") != machine_fingerprint(self.device):  # never another machine's or library's
            logger.info("%s was measured on another machine or library version: measuring again", path)
            return None
        try:
            choice = Choice.from_dict(data)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            unreadable(path, err)
            return None
        remember_kernels(choice.kernels)  # measured with the choice, on this machine: not timed again here
        if remove_unchosen:
            with contextlib.suppress(OSError):
                saved = data.get("saved")  # (the file's time is its last use: reading it touches it)
                built_before = float(saved) if isinstance(saved, (int, float)) else os.path.getmtime(path)
                self._remove_unchosen_graphs(choice, built_before)
        with contextlib.suppress(OSError):  # its last use, for ``hf-w2v2 cache --older-than`` (a read-only cache: not)
            os.utime(path)
        return choice

    def _remove_unchosen_graphs(self, choice: Choice, built_before: float) -> None:
        """Remove the graphs of the paths ``choice`` does not run first (built to be measured: BASE's fp32 and
        int8 ONNX graphs alone take 560 MB), those written before the choice was saved (``built_before``: not a
        build of a process measuring now, nor the graph of a path that ran after a chosen one failed). Done at a
        start that reads the choice, not at the end of the measurement, where another process measuring the
        same model at once may still read them. A chosen path that fails later is followed by the next, built
        again then (:meth:`_call`)."""
        keep = {file for name in choice.first_paths() for file in graph_files(name)}
        folder = os.path.join(self._root(), self._key())
        removed, freed = [], 0
        for name in sorted(GRAPH_FILES - keep):
            file = os.path.join(folder, name)
            with contextlib.suppress(OSError):  # absent, or a read-only cache
                if os.path.getmtime(file) < built_before:
                    size = os.path.getsize(file)
                    os.remove(file)
                    removed.append(name)
                    freed += size
        if removed:
            logger.info(
                "removed the graphs of paths not chosen from %s (%s: %.0f MB)", folder, ", ".join(removed), freed / MB
            )

    def _timings_file(self) -> str:
        setting = f"{self.precision} timing {TIMING_METHOD} grid {self.length_grid}"
        key = speed_key(self.model, self.device, setting)
        return os.path.join(self._root(), "timings", f"{key}.json")

    def _load_timings(self, path: str, candidates: Sequence[str]) -> dict[str, Any] | None:
        """Path timings in ``path`` (:meth:`_timings_file`), measured on this machine for a model of the same
        architecture (other weights, other calibration clips, another guard), if they cover every candidate;
        only ``auto`` uses them."""
        data = read_json(path) if self.precision == "auto" else None
        if data is None or data.get("fingerprint") != machine_fingerprint(self.device):
            return None
        try:
            if not isinstance(data["seconds"], dict) or not isinstance(data["failed"], dict):
                raise TypeError("seconds and failed are not objects")
            covered = set(candidates) <= set(data["candidates"]) and FALLBACK in data["seconds"]
        except (KeyError, TypeError) as err:
            unreadable(path, err)
            return None
        return data if covered else None

    def _save_timings(self, path: str, choice: Choice, candidates: Sequence[str]) -> None:
        if self.precision != "auto":
            return
        seconds = {r.name: [r.seconds, r.seconds_recurring] for r in choice.results if r.seconds is not None}
        failed = {r.name: r.error for r in choice.results if r.seconds is None and r.error is not None}
        data = {"fingerprint": choice.fingerprint, "candidates": list(candidates), "seconds": seconds, "failed": failed}
        write_json(path, data)

    def _save(self, choice: Choice) -> None:
        model = str(getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__)
        data = {**asdict(choice), "model": model, "saved": time.time()}  # the name for ``hf-w2v2 cache``
        write_json(self._cache_file(), data)


def check_calibration_clips(
    model: nn.Module, clips: Sequence[np.ndarray], references: Sequence[Sequence[int]] | None
) -> None:
    """ValueError, naming the clip, for calibration clips the model cannot take (:func:`check_length`) or a
    number of references other than of clips; found when the clips are handed over, not at the first call,
    whose audio would be blamed."""
    for i, clip in enumerate(clips):
        try:
            check_length(clip, model.config)
        except ValueError as err:
            raise ValueError(f"calibration clip {i}: {err}") from err
    check_references(clips, references)


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``; None where there is none, or, with a warning, where it cannot be read
    (a file cut short by a process killed while writing it, before writes were made whole)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
    except (OSError, ValueError, TypeError) as err:
        unreadable(path, err)
        return None
    return data


def unreadable(path: str, err: Exception) -> None:
    """The warning for a measurement file that cannot be used (it is measured again, and written anew)."""
    logger.warning("could not read the measurement in %s (%s: %s): measuring again", path, type(err).__name__, err)


def write_json(path: str, data: dict[str, Any]) -> None:
    """``data`` as indented JSON in ``path``, its folder made if missing; where that fails (a full disk, a
    read-only cache), a warning: the measurement stands for this process, and is made again next time."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_text(path, json.dumps(data, indent=1))  # whole: a reader never meets half a file
    except OSError as err:
        logger.warning("could not keep the measurement in %s (%s: %s)", path, type(err).__name__, err)


def optimize(
    model: nn.Module,
    precision: str = "auto",
    calibration: Sequence[np.ndarray] | None = None,
    cache: str | os.PathLike | None = None,
    max_cer_change: float = MAX_CER_CHANGE,
    references: Sequence[Sequence[int]] | None = None,
    length_grid: bool = True,
) -> FastModel:
    """The model on the fastest accurate path for this machine: ``fast(input_values, mask).logits``.

    Args:
        model: a CTC model (``Wav2Vec2ForCTC``) on its device (CPU or CUDA).
        precision: ``"auto"`` (measure every path), or one path name of
            :data:`hf_w2v2.inference.paths.CPU_PATHS` / ``GPU_PATHS`` to run that one (still guarded).
        calibration: normalised ``(T,)`` float32 clips (a few to a few dozen seconds each) for the
            static int8 paths and the accuracy guard; without them the guard uses the first input
            and static int8 is skipped.
        cache: folder for the measured ranking and the built graphs (default
            ``$HF_W2V2_CACHE/optimize`` or ``~/.cache/hf_w2v2/optimize``). One that cannot be made or
            written is replaced by a temporary folder for this process, with a warning (read as it is
            where it already holds this model's choice).
        max_cer_change: the accuracy guard's bound (infinite only to time random-weight models,
            whose near-uniform logits make any token comparison meaningless).
        references: token ids of each calibration clip's transcript (the tokenizer's ``input_ids``):
            the guard then bounds the change of CER against them, as the issue defines it.
        length_grid: run eager CPU paths of a frame-local model on the length grid
            (:func:`hf_w2v2.inference.paths.on_grid`), in the timing as in use; ``False``: every input
            at its own length.

    The choice is made at the first call (it builds and times every path: seconds for a small
    model, a few minutes for BASE) and cached; :attr:`FastModel.choice` has the measurements.
    """
    if not type(model).__name__.endswith("ForCTC"):  # ours or stock transformers'
        raise ValueError(
            f"optimize() chooses among paths for CTC models (frame logits, guarded by greedy CER), not "
            f"{type(model).__name__}; for other heads use quantize_int8 or export_onnx (hf_w2v2.inference)"
        )
    device = next(model.parameters()).device
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()} - {"float32"})
    if dtypes:  # its "fp32" path would run in that dtype, and every speed-up and CER change be measured against it
        raise ValueError(
            f"optimize() measures every path against the float32 model, and this one holds {', '.join(dtypes)} "
            f"weights: pass model.float() (bf16 and fp16 are among the paths it measures)"
        )
    known = ("auto", *(GPU_PATHS if device.type == "cuda" else CPU_PATHS))
    if precision not in known:
        raise ValueError(f"precision on {device.type} must be one of {', '.join(known)}, got {precision!r}")
    if calibration is not None:
        check_calibration_clips(model, calibration, references)
    folder = None if cache is None else os.fspath(cache)
    return FastModel(model, precision, calibration, folder, max_cer_change, references, length_grid)
