"""Speech to text with a fine-tuned CTC model: load a model folder, transcribe files or arrays.

Shape legend: T samples, F frames, V vocab.

A model folder holds what ``save_pretrained`` writes for the model and the
``Wav2Vec2Processor`` (config, weights, vocab, feature extractor) and, optionally, a
beam-search decoder (``alphabet.json`` + ``language_model/``, see
:mod:`hf_w2v2.decoding.beam`). With a decoder, transcripts come from the n-gram beam
search; without one, from greedy decoding. With a :class:`~hf_w2v2.inference.segments.Segmenter`,
recordings are first cut at pauses and each segment is normalised and transcribed on its own (the
model sees utterance-length inputs, as in training); a recording or segment longer than ``chunk_s``
runs in overlapping windows (:mod:`hf_w2v2.inference.chunked`), so memory does not grow with length.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import Wav2Vec2Processor

from hf_w2v2.data.audio import load_audio, normalize_waveform
from hf_w2v2.data.sources import read_audiofolder
from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.beam import ALPHABET_FILE, BeamSearchDecoder, BeamSettings
from hf_w2v2.decoding.confidence import with_confidences
from hf_w2v2.decoding.greedy import greedy_decode
from hf_w2v2.decoding.outputs import Transcription, join_transcriptions
from hf_w2v2.inference.batching import batched_logits, check_length
from hf_w2v2.inference.chunked import chunked_logits, seconds_to_samples
from hf_w2v2.inference.memory import release_freed_memory
from hf_w2v2.inference.model_folder import check_model_folder
from hf_w2v2.inference.optimize import FastModel, optimize
from hf_w2v2.inference.paths import BATCH_DEPENDENT_PATHS, uses_grid
from hf_w2v2.inference.precision import prepare_for_inference
from hf_w2v2.inference.segments import Segmenter, SpeechSegment
from hf_w2v2.models.ctc import Wav2Vec2ForCTC
from hf_w2v2.models.integrity import check_finite_weights
from hf_w2v2.models.lengths import conv_output_length, hop_length, receptive_field
from hf_w2v2.text.normalize import TextNormalizer

logger = logging.getLogger(__name__)

CALIBRATION_CLIPS = 8  # first recordings (cut to one window) that calibrate and guard precision="auto"
GROUP_FILES = 32  # files read, run and decoded together by iter_files (at least)
# Batches of similar length drawn from each group: the more files, the less padding. synth-dev's 150
# files in batches of 8 hold 29% padded samples when sorted 32 at a time, 10% 128 at a time, 6% all at once.
GROUP_BATCHES = 16
GAP_LOGIT = -30.0  # logit of every non-blank label on frames between segments (blank: 0), about -30 nats


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available; ``"cpu"``/``"cuda"``/``"cuda:1"`` are taken as is."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


@dataclass
class FileResult:
    """Outcome for one file: a transcription, or the error that prevented it."""

    path: str
    transcription: Transcription | None = None
    duration: float | None = None  # seconds
    error: str | None = None


class Transcriber:
    """Model + processor (+ beam-search decoder) turning audio into :class:`Transcription`.

    Args:
        model: a CTC model (``Wav2Vec2ForCTC``), moved to ``device`` and put in eval mode.
        processor: its ``Wav2Vec2Processor`` (feature extractor + CTC tokenizer).
        decoder: beam-search decoder; ``None`` decodes greedily.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        bf16: run the model under bfloat16 autocast (logits are decoded in float32); the same as
            ``precision="bf16"``, kept for older callers.
        precision: ``"fp32"`` (default, exact), ``"bf16"`` (autocast) or ``"int8"`` (dynamic
            quantisation, CPU; the given model is quantised in place); see
            :mod:`hf_w2v2.inference.precision` for when each falls back. ``"auto"``: the fastest
            accurate path for this machine (:func:`hf_w2v2.inference.optimize`), measured on the first
            call with the first recordings as calibration clips and cached.
        chunk_s: window length for long audio in seconds (``None``: never chunk).
        stride_s: context dropped at each side of a window; default ``chunk_s / 6``.
        batch_size: recordings (or windows of one long recording) run together. Files no longer
            than ``chunk_s`` are sorted by length within each group of files and padded into batches
            (with an attention mask; models whose feature encoder uses group norm, whose output
            depends on padding, and dynamic int8, whose scales depend on the batch, run them one by
            one). Each 20 s window of a BASE model holds about 0.4 GB of activations on a CPU.
        beam: the beam search's settings for every call (beam width, hotword weight, alpha/beta, pruning);
            unset ones are the decoder's own (saved or tuned with it).
        segmenter: cut every recording at pauses (energy VAD or a VAD model) and transcribe the
            segments one by one, each normalised alone; ``None`` (default) runs whole recordings.
        length_grid: pad inputs to the length grid where that leaves the logits unchanged to float
            rounding (:attr:`length_grid`); ``False`` runs every input at its own length.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Wav2Vec2Processor,
        decoder: BeamSearchDecoder | None = None,
        device: str = "auto",
        bf16: bool = False,
        chunk_s: float | None = 20.0,
        stride_s: float | None = None,
        batch_size: int = 1,
        precision: str = "fp32",
        beam: BeamSettings | None = None,
        segmenter: Segmenter | None = None,
        length_grid: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        if bf16 and precision not in ("fp32", "bf16"):
            raise ValueError(f"bf16=True contradicts precision={precision!r}")
        if precision == "auto" and not bf16:
            self.model: Any = optimize(model.to(self.device).eval(), "auto", length_grid=length_grid)
            self.precision = "auto"
        else:
            self.model, self.precision = prepare_for_inference(model, "bf16" if bf16 else precision, self.device)
        self.processor = processor
        self.alphabet = CTCAlphabet.from_tokenizer(processor.tokenizer)
        config: Any = model.config
        if config.vocab_size != len(self.alphabet):
            raise ValueError(
                f"model outputs {config.vocab_size} classes but the tokenizer has {len(self.alphabet)} "
                "tokens: the model and the processor do not belong together"
            )
        pad = processor.tokenizer.pad_token_id
        if pad is not None and config.pad_token_id != pad:
            raise ValueError(
                f"config.json's pad_token_id ({config.pad_token_id!r}, the CTC blank) is not the tokenizer's pad "
                f"token ({processor.tokenizer.pad_token!r} = {pad} in vocab.json): set pad_token_id to {pad}"
            )
        if decoder is not None and decoder.alphabet.labels != self.alphabet.labels:
            raise ValueError("the decoder's alphabet differs from the tokenizer's vocabulary (other label order?)")
        self.bf16 = self.precision == "bf16"
        self.sampling_rate = processor.feature_extractor.sampling_rate
        hop = self.hop = hop_length(config.conv_stride)
        self.seconds_per_frame = hop / self.sampling_rate
        self.decoder = decoder  # never changed here: this model's frame hop and ``beam`` go in with each call
        self.beam = beam or BeamSettings()
        self.chunk = None if chunk_s is None else seconds_to_samples(chunk_s, hop, self.sampling_rate)
        if stride_s is None:
            stride_s = 0.0 if chunk_s is None else chunk_s / 6
        self.stride = 0 if self.chunk is None else max(seconds_to_samples(stride_s, hop, self.sampling_rate), hop)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.segmenter = segmenter
        self.allow_length_grid = length_grid

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, lm_path: str | os.PathLike | None = None, use_lm: bool = True, **kwargs
    ) -> Transcriber:
        """Load a model folder; its saved decoder is used unless ``lm_path`` or ``use_lm=False`` says otherwise.

        Raises:
            FileNotFoundError: ``path`` or ``lm_path`` does not exist, or ``path`` lacks a file (all named).
        """
        path = os.fspath(path)
        check_model_folder(path)  # names every missing file before transformers fails on the first
        processor = Wav2Vec2Processor.from_pretrained(path)
        model = Wav2Vec2ForCTC.from_pretrained(path)
        check_finite_weights(model, path)  # from_pretrained only warns (stock's contract); a tool refuses
        decoder = None
        if use_lm and lm_path is not None:
            decoder = BeamSearchDecoder.from_tokenizer(processor, lm_path=lm_path)
        elif use_lm and os.path.isfile(os.path.join(path, ALPHABET_FILE)):
            decoder = BeamSearchDecoder.from_pretrained(path)
        return cls(model, processor, decoder=decoder, **kwargs)

    def logits(self, audio: np.ndarray) -> torch.Tensor:
        """``(F, V)`` float32 logits of one ``(T,)`` recording at the processor's sampling rate.

        Raises:
            ValueError: empty audio, or audio shorter than one frame (25 ms).
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.shape[0] == 0:
            raise ValueError(f"audio must be a non-empty (T,) array, got shape {audio.shape}")
        input_values = torch.from_numpy(self._normalize(audio))  # (T,)
        self._calibrate([input_values.numpy()])
        batch_size = 1 if self._batches_change_results() else self.batch_size
        return chunked_logits(
            self.model,
            input_values,
            self.chunk,
            self.stride,
            self.stride,
            batch_size=batch_size,
            bf16=self.bf16,
            grid=self._pads_to_grid,
        )

    def _batches_change_results(self) -> bool:
        """Whether running inputs together would change each one's logits: dynamic int8 scales every
        activation by its whole batch's range, padding and the other clips included (``precision="int8"``,
        or an ``auto`` choice, for new or recurring lengths, among
        :data:`~hf_w2v2.inference.paths.BATCH_DEPENDENT_PATHS`)."""
        if isinstance(self.model, FastModel):
            return bool({self.model.chosen, self.model.chosen_recurring} & set(BATCH_DEPENDENT_PATHS))
        return self.precision == "int8"

    @property
    def length_grid(self) -> bool:
        """Whether inputs run padded to the length grid (:func:`~hf_w2v2.inference.chunked.grid_length`):
        on the CPU, for an eager torch path (:data:`~hf_w2v2.inference.paths.GRID_PATHS`; for ``auto``, the
        path its choice runs new input lengths on) and a feature encoder whose frames padding leaves unchanged
        (layer norm)."""
        path = getattr(self.model, "chosen", None) or self.precision
        return self.allow_length_grid and uses_grid(self.model, path)

    @property
    def _pads_to_grid(self) -> bool:
        """Whether this transcriber pads its inputs itself: not for ``auto``, whose paths pad their own
        (the recurring-length path, OpenVINO or ONNX Runtime, must see each input's own length)."""
        return self.length_grid and not isinstance(self.model, FastModel)

    def _normalize(self, audio: np.ndarray) -> np.ndarray:
        if self.processor.feature_extractor.do_normalize:
            return normalize_waveform(audio)  # over the whole recording, as the feature extractor does
        return audio

    def _calibrate(self, clips: Iterable[np.ndarray]) -> None:
        """Hand the first normalised clips (cut to one window) to a path choice not made yet (only then
        are ``clips`` read: a generator normalises nothing once the choice is made)."""
        if isinstance(self.model, FastModel) and self.model.choice is None:
            first = [c[: self.chunk] for c in itertools.islice(clips, CALIBRATION_CLIPS)]
            self.model.set_calibration(first, first_inputs=True)

    def choose_path(self, recordings: Sequence[np.ndarray], texts: Sequence[str] | None = None) -> str | None:
        """``precision="auto"``: make the path choice now, calibrated on the first :data:`CALIBRATION_CLIPS`
        ``recordings`` (at the processor's rate, no longer than one window) and, with their ``texts``,
        guarded against those transcripts (the CER change the issue bounds; without them the guard compares
        with fp32's tokens, which is stricter). A service calls this before it takes requests, so that no
        request waits for the measurement. Returns the path for new input lengths (None for a precision
        that is not ``auto``; the choice already made when one was).

        Raises:
            ValueError: no recording, a recording longer than one window, or ``texts`` of another length.
        """
        return self._choose_path(recordings, texts, first_inputs=False)

    def _choose_path(
        self, recordings: Sequence[np.ndarray], texts: Sequence[str] | None, first_inputs: bool
    ) -> str | None:
        """:meth:`choose_path`; ``first_inputs``: the recordings are a run's first files, not a calibration set
        (:meth:`~hf_w2v2.inference.optimize.FastModel.set_calibration`)."""
        if not isinstance(self.model, FastModel):
            return None
        if self.model.choice is None:
            if not recordings or (texts is not None and len(texts) != len(recordings)):
                raise ValueError("choose_path needs recordings, and as many texts as recordings if any")
            clips = [self._normalize(np.asarray(a, dtype=np.float32)) for a in recordings[:CALIBRATION_CLIPS]]
            if self.chunk is not None and any(c.shape[0] > self.chunk for c in clips):
                raise ValueError(f"calibration recordings must be at most one window ({self.chunk} samples) long")
            tokenizer, normalizer = self.processor.tokenizer, TextNormalizer()  # as evaluation reads references
            references = None
            if texts is not None:
                references = [tokenizer(normalizer(t)).input_ids for t in texts[:CALIBRATION_CLIPS]]
            self.model.set_calibration(clips, references, first_inputs)
            self.model(torch.from_numpy(clips[0])[None])
        return self.model.chosen

    def _choose_on_first(self, paths: Sequence[str]) -> None:
        """``precision="auto"`` with no choice yet: :meth:`choose_path` on the first readable files (cut to one
        window), against fp32's tokens, cached for the model whatever the files (a run on other files reads
        the choice). Unreadable files are passed by here; they are reported in the run."""
        if not isinstance(self.model, FastModel) or self.model.choice is not None:
            return
        recordings = []
        window = None if self.chunk is None else self.chunk / self.sampling_rate  # seconds: all a clip keeps
        for path in paths:
            try:
                audio = load_audio(path, self.sampling_rate, max_seconds=window)  # not an hour for one window
                check_length(audio, self.model.config)
            except ValueError:  # AudioLoadError is one
                continue
            recordings.append(audio if self.chunk is None else audio[: self.chunk])
            if len(recordings) == CALIBRATION_CLIPS:
                break
        if recordings:
            self._choose_path(recordings, None, first_inputs=True)

    def choose_path_on(self, folder: str) -> str | None:
        """:meth:`choose_path` on the first :data:`CALIBRATION_CLIPS` recordings of an audiofolder
        (``metadata.csv`` with ``file_name`` and ``text``) and their transcripts, read at the processor's
        rate. Nothing is read for a precision that is not ``auto`` (None).

        Raises:
            FileNotFoundError / ValueError: as :func:`hf_w2v2.data.sources.read_audiofolder` and
                :meth:`choose_path` say.
        """
        if not isinstance(self.model, FastModel):
            return None
        utterances = read_audiofolder(folder)[:CALIBRATION_CLIPS]
        recordings = [load_audio(str(u.path), self.sampling_rate) for u in utterances]
        return self.choose_path(recordings, [str(u.text) for u in utterances])

    def logits_batch(self, recordings: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """``(F_i, V)`` float32 logits of each ``(T_i,)`` recording, in order.

        With ``batch_size`` > 1, recordings that fit one window run as padded batches of similar
        lengths; longer ones run windowed, one by one.
        """
        model: Any = self.model
        frame_local = model.base_encoder().feature_extractor.frame_local
        self._calibrate(self._normalize(np.asarray(a, dtype=np.float32)) for a in recordings)
        out: list[torch.Tensor | None] = [None] * len(recordings)
        if isinstance(self.model, FastModel) and self.model.choice is None and recordings:
            out[0] = self.logits(recordings[0])  # makes auto's choice, on which batching depends
        if self.batch_size == 1 or not frame_local or self._batches_change_results():
            return [self.logits(audio) if done is None else done for done, audio in zip(out, recordings)]
        short = []
        for i, audio in enumerate(recordings):
            if out[i] is not None:  # auto's choice was made on it
                continue
            audio = np.asarray(audio, dtype=np.float32)
            if self.chunk is not None and audio.shape[0] > self.chunk:
                out[i] = self.logits(audio)
            else:
                short.append(i)
        clips = [self._normalize(np.asarray(recordings[i], dtype=np.float32)) for i in short]
        results = batched_logits(self.model, clips, self.batch_size, bf16=self.bf16, grid=self._pads_to_grid)
        for i, logits in zip(short, results):
            out[i] = logits
        return out  # type: ignore[return-value]

    def decode(
        self, logits: Sequence[torch.Tensor], hotwords: Sequence[str] | None = None, num_processes: int = 1
    ) -> list[Transcription]:
        """Decode ``(F, V)`` logits with the beam-search decoder when there is one, else greedily; each
        word gets its time and its confidence from the posteriors (:mod:`hf_w2v2.decoding.confidence`)."""
        if self.decoder is None:
            decoded = [greedy_decode(x, self.alphabet, seconds_per_frame=self.seconds_per_frame)[0] for x in logits]
        else:
            decoded = self.decoder.decode_batch(
                logits, hotwords, self.beam, seconds_per_frame=self.seconds_per_frame, num_processes=num_processes
            )
        return [with_confidences(t, x, self.alphabet) for t, x in zip(decoded, logits)]

    def transcribe_array(
        self, audio: np.ndarray, sampling_rate: int = 16_000, hotwords: Sequence[str] | None = None
    ) -> Transcription:
        """Transcribe one ``(T,)`` recording given at ``sampling_rate`` Hz (cut at pauses with a segmenter)."""
        if sampling_rate != self.sampling_rate:
            raise ValueError(
                f"audio is at {sampling_rate} Hz, the model expects {self.sampling_rate} Hz: resample first"
            )
        if self.segmenter is None:
            return self.decode([self.logits(audio)], hotwords=hotwords)[0]
        return self.transcribe_recordings([np.asarray(audio, dtype=np.float32)], hotwords=hotwords)[0]

    def segments(self, audio: np.ndarray) -> list[SpeechSegment]:
        """Where a ``(T,)`` recording is cut: at its pauses with a segmenter, else nowhere (one segment)."""
        if self.segmenter is None:
            return [SpeechSegment(0, audio.shape[0], self.sampling_rate)]
        config: Any = self.model.config
        needed = receptive_field(config.conv_kernel, config.conv_stride)
        return [s for s in self.segmenter.segments(audio) if s.end - s.start >= needed]

    def transcribe_recordings(
        self, recordings: Sequence[np.ndarray], hotwords: Sequence[str] | None = None, num_processes: int = 1
    ) -> list[Transcription]:
        """Transcriptions of ``(T_i,)`` recordings: each segment (:meth:`segments`) transcribed alone, its
        times placed in its recording; a recording without speech gets an empty transcription."""
        pieces, owners = [], []
        for i, audio in enumerate(recordings):
            for segment in self.segments(audio):
                pieces.append(audio[segment.start : segment.end])
                owners.append((i, segment))
        decoded = self.decode(self.logits_batch(pieces), hotwords=hotwords, num_processes=num_processes)
        parts: list[list[Transcription]] = [[] for _ in recordings]
        for (i, segment), transcription in zip(owners, decoded):
            parts[i].append(transcription.shifted(segment.start // self.hop, self.seconds_per_frame))
        return [join_transcriptions(p) for p in parts]

    def logits_by_segment(self, audio: np.ndarray) -> torch.Tensor:
        """``(F, V)`` logits of a whole ``(T,)`` recording with each segment run (and normalised) alone;
        frames outside every segment say "blank" (forced alignment runs on these)."""
        if self.segmenter is None:
            return self.logits(audio)
        config: Any = self.model.config
        total = conv_output_length(audio.shape[0], config.conv_kernel, config.conv_stride)
        out = torch.full((total, len(self.alphabet)), GAP_LOGIT)  # (F, V)
        out[:, self.alphabet.blank_id] = 0.0
        done = 0  # frames filled so far: a segment's leading margin may overlap the previous one's tail
        for segment in self.segments(audio):
            logits = self.logits(audio[segment.start : segment.end])  # (F_seg, V)
            first = segment.start // self.hop  # segment frame j is recording frame first + j
            start, stop = max(done, first), min(total, first + logits.shape[0])
            if stop > start:
                out[start:stop] = logits[start - first : stop - first]
                done = stop
        return out

    def iter_files(
        self,
        paths: Sequence[str],
        hotwords: Sequence[str] | None = None,
        num_processes: int = 1,
        group_size: int | None = None,
        progress: bool = True,
    ) -> Iterator[FileResult]:
        """Transcribe files in order; a file that cannot be read or is too short yields its error.

        Files are read ``group_size`` at a time (default: :data:`GROUP_FILES`, or :data:`GROUP_BATCHES`
        batches' worth when more); a group's recordings are batched by length and its logits decoded
        together (in ``num_processes`` processes). The memory of each group is freed and returned to the
        system (:mod:`hf_w2v2.inference.memory`) before the next, so the peak does not grow with the
        number of files.
        """
        if group_size is None:
            group_size = max(GROUP_FILES, GROUP_BATCHES * self.batch_size)
        self._choose_on_first(paths)  # before the bar: its rate and time left then count transcription only
        bar = tqdm(total=len(paths), desc="transcribing", unit=" file", disable=not progress)
        for first in range(0, len(paths), group_size):
            results, recordings = [], []
            for path in paths[first : first + group_size]:
                result = FileResult(path)
                try:
                    audio = load_audio(path, self.sampling_rate)
                    result.duration = audio.shape[0] / self.sampling_rate
                    check_length(audio, self.model.config)
                    recordings.append(audio)
                except ValueError as err:  # AudioLoadError is one; so is audio shorter than one frame
                    result.error = str(err)
                    logger.info("skipping %s: %s", path, err)
                results.append(result)
            logits: list[torch.Tensor] = []  # (F, V) per recording, kept only without a segmenter
            if self.segmenter is None:
                logits = self.logits_batch(recordings)
                bar.set_postfix_str("decoding")
                decoded = iter(self.decode(logits, hotwords=hotwords, num_processes=num_processes))
            else:
                decoded = iter(self.transcribe_recordings(recordings, hotwords, num_processes))
            bar.update(len(results))
            bar.set_postfix_str("")
            for result in results:
                if result.error is None:
                    result.transcription = next(decoded)
                yield result
            del recordings, logits, decoded  # this group's audio and logits: free them before the next
            release_freed_memory()  # and hand the pages back, so memory stays flat in the number of files
        bar.close()

    def transcribe_files(self, paths: Sequence[str], **kwargs) -> list[FileResult]:
        """List form of :meth:`iter_files`."""
        return list(self.iter_files(paths, **kwargs))
