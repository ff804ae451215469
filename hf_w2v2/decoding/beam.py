"""CTC beam search with an n-gram language model (shallow fusion), through pyctcdecode.

Shape legend: F frames, V vocab.

Each beam's score is ``log p_ctc(text | audio) + alpha * ln p_lm(text) + beta * n_words``
(pyctcdecode's prefix beam search; the LM is a KenLM model, ARPA or binary). ``alpha``
weighs the LM against the acoustic model and ``beta`` rewards each word, offsetting the
LM's preference for short outputs; tune both on a dev set (:mod:`hf_w2v2.decoding.tuning`).

pyctcdecode is called directly: ``Wav2Vec2ProcessorWithLM`` is deprecated. A decoder is
saved next to the model in pyctcdecode's layout (the one ``Wav2Vec2ProcessorWithLM``
used): ``alphabet.json``, ``language_model/{attrs.json, unigrams.txt, <lm file>}``, plus
our ``decoder_config.json`` (beam width, the tuning record).

A decoder is never changed after construction: the search settings of one call (beam width,
hotword weight, ``alpha``/``beta``, pruning) come in a :class:`BeamSettings`, the way
pyctcdecode's ``decode(..., beam_width=...)`` takes them; unset ones are the decoder's own.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import ModuleType

import numpy as np
import torch

from hf_w2v2.decoding.alphabet import BLANK_LABEL, DELIMITER_LABEL, UNK_LABEL, CTCAlphabet
from hf_w2v2.decoding.lm_files import check_lm_alphabet, load_kenlm, read_unigrams
from hf_w2v2.decoding.outputs import SECONDS_PER_FRAME, Span, Transcription
from hf_w2v2.optional import require

logger = logging.getLogger(__name__)

ALPHABET_FILE = "alphabet.json"
LM_DIR = "language_model"
LM_ATTRS_FILE = "attrs.json"
UNIGRAMS_FILE = "unigrams.txt"
CONFIG_FILE = "decoder_config.json"
LM_SUFFIXES = (".arpa", ".bin", ".binary")


def _import_pyctcdecode() -> ModuleType:
    return require("pyctcdecode", "beam search", "'hf_w2v2[lm]' (or pyctcdecode kenlm-ex)")


# pyctcdecode's defaults; a less confident acoustic model gains from lower values (README, issue 5).
DEFAULT_TOKEN_MIN_LOGP = -5.0
DEFAULT_BEAM_PRUNE_LOGP = -10.0
DEFAULT_HOTWORD_WEIGHT = 10.0  # pyctcdecode's default log-score bonus per hotword match


@dataclass(frozen=True)
class BeamSettings:
    """The search settings of one decoding call; ``None`` keeps the decoder's own."""

    beam_width: int | None = None  # beams kept per frame
    hotword_weight: float | None = None  # log-score bonus per hotword match
    alpha: float | None = None  # LM weight
    beta: float | None = None  # word insertion bonus
    token_min_logp: float | None = None  # characters below this log-probability at a frame are not tried
    beam_prune_logp: float | None = None  # beams this far below the best one are dropped


class BeamSearchDecoder:
    """Beam search CTC decoder, optionally fused with a KenLM n-gram model.

    Args:
        alphabet: labels of the model's ``V`` output classes, in id order.
        lm_path: ARPA (``.arpa``) or KenLM binary file; ``None`` for beam search without LM.
        unigrams: the LM's words; read from the ARPA file when ``None``.
        alpha: LM weight. beta: word insertion bonus.
        beam_width: beams kept per frame (100 is a common accuracy/speed point).
        token_min_logp: characters whose log-probability at a frame is below this are not
            tried there (the frame's best one always is); lower values let the LM rescue
            characters an uncertain acoustic model ranks low, at some speed.
        beam_prune_logp: beams scoring this far below the best one are dropped.
        unk_score_offset: log-score added for a word the LM does not know.
        seconds_per_frame: encoder hop for word times (0.02 s for wav2vec 2.0 at 16 kHz).
        max_unspellable: largest fraction of LM words that may use characters the alphabet
            lacks before the LM is rejected as built for another vocabulary.

    The constructor keeps its flat keywords on purpose: they are pyctcdecode's own
    (``build_ctcdecoder(labels, kenlm_model_path, unigrams, alpha, beta, unk_score_offset)`` and
    ``decode(beam_width, token_min_logp, beam_prune_logp, hotword_weight)``), which users of that library
    already know. They set the decoder's defaults once; a call that wants others passes a frozen
    :class:`BeamSettings` (the same six search knobs), so the decoder is never changed after construction.
    """

    def __init__(
        self,
        alphabet: CTCAlphabet,
        lm_path: str | os.PathLike | None = None,
        unigrams: Sequence[str] | None = None,
        alpha: float = 0.5,
        beta: float = 1.0,
        beam_width: int = 100,
        token_min_logp: float = DEFAULT_TOKEN_MIN_LOGP,
        beam_prune_logp: float = DEFAULT_BEAM_PRUNE_LOGP,
        unk_score_offset: float = -10.0,
        seconds_per_frame: float = SECONDS_PER_FRAME,
        max_unspellable: float = 0.1,
        hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
        tuning: dict | None = None,
    ) -> None:
        pyctcdecode = _import_pyctcdecode()
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        self.alphabet = alphabet
        self.beam_width = beam_width
        self.token_min_logp = float(token_min_logp)
        self.beam_prune_logp = float(beam_prune_logp)
        self.hotword_weight = float(hotword_weight)
        self.seconds_per_frame = seconds_per_frame
        self.lm_path = None if lm_path is None else os.fspath(lm_path)
        self.tuning = tuning  # the record of the alpha/beta search the saved values came from
        self.unigrams: list[str] = []
        language_model = None
        if self.lm_path is not None:
            if alphabet.delimiter_id is None:
                raise ValueError("an n-gram LM scores words, but the CTC vocabulary has no word delimiter")
            kenlm_model = load_kenlm(self.lm_path)
            self.unigrams = read_unigrams(self.lm_path) if unigrams is None else list(unigrams)
            check_lm_alphabet(self.unigrams, alphabet, self.lm_path, max_unspellable)
            language_model = pyctcdecode.LanguageModel(
                kenlm_model,
                self.unigrams,
                alpha=float(alpha),
                beta=float(beta),
                unk_score_offset=float(unk_score_offset),
            )
        self._alpha, self._beta = float(alpha), float(beta)
        self._unk_score_offset = float(unk_score_offset)
        # Build pyctcdecode's Alphabet directly: its normaliser would rename labels we already mapped.
        ctc_alphabet = pyctcdecode.Alphabet(list(alphabet.labels), is_bpe=False)
        self._decoder = pyctcdecode.BeamSearchDecoderCTC(ctc_alphabet, language_model)

    def __del__(self) -> None:
        # pyctcdecode keeps each LM in a class-level registry; drop ours with the decoder.
        decoder = getattr(self, "_decoder", None)
        if decoder is not None:
            decoder.cleanup()

    @classmethod
    def from_tokenizer(cls, tokenizer: object, lm_path: str | os.PathLike | None = None, **kwargs) -> BeamSearchDecoder:
        """Decoder whose labels come from a ``Wav2Vec2CTCTokenizer`` (or processor)."""
        return cls(CTCAlphabet.from_tokenizer(tokenizer), lm_path=lm_path, **kwargs)

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def beta(self) -> float:
        return self._beta

    @property
    def has_lm(self) -> bool:
        return self.lm_path is not None

    def resolve(self, settings: BeamSettings | None = None) -> BeamSettings:
        """``settings`` with every unset value the decoder's own."""
        own = BeamSettings(
            self.beam_width, self.hotword_weight, self._alpha, self._beta, self.token_min_logp, self.beam_prune_logp
        )
        given = {k: v for k, v in vars(settings or BeamSettings()).items() if v is not None}
        return replace(own, **given)

    @contextmanager
    def _lm_weights(self, alpha: float, beta: float) -> Iterator[None]:
        """pyctcdecode keeps alpha/beta in its LM object: set them for one call, then put the decoder's back."""
        if (alpha, beta) == (self._alpha, self._beta) or not self.has_lm:
            yield
            return
        self._decoder.reset_params(alpha=float(alpha), beta=float(beta))
        try:
            yield
        finally:
            self._decoder.reset_params(alpha=self._alpha, beta=self._beta)

    def _log_probs(self, logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """``(F, V)`` float32 log-probabilities; checks the vocabulary size."""
        logits = torch.as_tensor(logits)
        if logits.dim() != 2:
            raise ValueError(f"logits must be (F, V) for one utterance, got shape {tuple(logits.shape)}")
        if logits.shape[-1] != len(self.alphabet):
            raise ValueError(
                f"logits have {logits.shape[-1]} classes but the decoder alphabet has {len(self.alphabet)} "
                "labels: the model and the decoder's tokenizer vocabulary do not match"
            )
        return torch.log_softmax(logits.detach().float().cpu(), dim=-1).numpy()  # (F, V)

    def _to_transcription(self, beam: tuple, seconds_per_frame: float) -> Transcription:
        text, word_frames, combined_score = beam[0], beam[-3], beam[-1]
        words = [Span.from_frames(w, s, e, seconds_per_frame) for w, (s, e) in word_frames]
        return Transcription(text=text, words=words, score=float(combined_score))

    @staticmethod
    def _search_kwargs(settings: BeamSettings, hotwords: Sequence[str] | None) -> dict:
        """pyctcdecode ``decode_beams`` options of resolved ``settings``."""
        return dict(
            beam_width=settings.beam_width,
            token_min_logp=settings.token_min_logp,
            beam_prune_logp=settings.beam_prune_logp,
            prune_history=True,  # only the best beam is returned, so beams equal over the LM history can merge
            hotwords=hotwords,
            hotword_weight=settings.hotword_weight,
        )

    def decode(
        self,
        logits: np.ndarray | torch.Tensor,
        hotwords: Sequence[str] | None = None,
        settings: BeamSettings | None = None,
        seconds_per_frame: float | None = None,
    ) -> Transcription:
        """Decode one utterance's ``(F, V)`` logits (or log-probs) into text with word times.

        Args:
            logits: ``(F, V)`` scores for one utterance (padding frames removed).
            hotwords: words or phrases to favour (may be unknown to the LM).
            settings: this call's beam width, hotword weight, alpha/beta, pruning (unset: the decoder's).
            seconds_per_frame: the model's frame hop for word times (default: the decoder's).
        """
        return self.decode_batch([logits], hotwords, settings, seconds_per_frame)[0]

    def decode_batch(
        self,
        logits_list: Sequence[np.ndarray | torch.Tensor],
        hotwords: Sequence[str] | None = None,
        settings: BeamSettings | None = None,
        seconds_per_frame: float | None = None,
        num_processes: int = 1,
    ) -> list[Transcription]:
        """Decode many utterances (see :meth:`decode`), in ``num_processes`` worker processes when > 1.

        The pool is forked per call, after the LM is loaded and this call's ``alpha``/``beta`` set,
        so workers share the LM memory and see them (pyctcdecode keeps the LM in a class-level
        registry that only a forked child inherits).
        """
        arrays = [self._log_probs(x) for x in logits_list]
        resolved = self.resolve(settings)
        kwargs = self._search_kwargs(resolved, hotwords)
        assert resolved.alpha is not None and resolved.beta is not None  # resolved: every value is set
        with self._lm_weights(resolved.alpha, resolved.beta):
            if num_processes > 1 and len(arrays) > 1 and "fork" in multiprocessing.get_all_start_methods():
                with multiprocessing.get_context("fork").Pool(min(num_processes, len(arrays))) as pool:
                    beams = self._decoder.decode_beams_batch(pool, arrays, **kwargs)
            else:
                beams = [self._decoder.decode_beams(x, **kwargs) for x in arrays]
        hop = self.seconds_per_frame if seconds_per_frame is None else seconds_per_frame
        return [self._to_transcription(b[0], hop) for b in beams]

    def save_pretrained(
        self, directory: str | os.PathLike, settings: BeamSettings | None = None, tuning: dict | None = None
    ) -> None:
        """Write the alphabet, the LM files and the settings (``settings`` over the decoder's own, e.g. tuned
        ``alpha``/``beta``, with their ``tuning`` record) into ``directory`` (the model folder)."""
        directory = os.fspath(directory)
        saved = self.resolve(settings)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, ALPHABET_FILE), "w", encoding="utf-8") as out:
            json.dump({"labels": list(self.alphabet.labels), "is_bpe": False}, out, ensure_ascii=False)
        lm_dir = os.path.join(directory, LM_DIR)
        _clear_lm_dir(lm_dir, keep=self.lm_path)
        if self.lm_path is not None:
            os.makedirs(lm_dir, exist_ok=True)
            attrs = {
                "alpha": saved.alpha,
                "beta": saved.beta,
                "unk_score_offset": self._unk_score_offset,
                "score_boundary": True,
            }
            with open(os.path.join(lm_dir, LM_ATTRS_FILE), "w", encoding="utf-8") as out:
                json.dump(attrs, out)
            with open(os.path.join(lm_dir, UNIGRAMS_FILE), "w", encoding="utf-8") as out:
                out.writelines(w + "\n" for w in sorted(self.unigrams))
            target = os.path.join(lm_dir, os.path.basename(self.lm_path))
            if os.path.abspath(target) != os.path.abspath(self.lm_path):
                shutil.copy2(self.lm_path, target)
        config = {
            "beam_width": saved.beam_width,
            "token_min_logp": saved.token_min_logp,
            "beam_prune_logp": saved.beam_prune_logp,
            "hotword_weight": saved.hotword_weight,
            "seconds_per_frame": self.seconds_per_frame,
            "tuning": self.tuning if tuning is None else tuning,
        }
        with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as out:
            json.dump(config, out, indent=2)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> BeamSearchDecoder:
        """Restore a decoder saved by :meth:`save_pretrained` (or by ``Wav2Vec2ProcessorWithLM``).

        Raises:
            FileNotFoundError: no ``alphabet.json`` in ``directory``, or the LM file is missing.
        """
        directory = os.fspath(directory)
        alphabet_path = os.path.join(directory, ALPHABET_FILE)
        if not os.path.isfile(alphabet_path):
            raise FileNotFoundError(f"no saved decoder in {directory}: {ALPHABET_FILE} is missing")
        with open(alphabet_path, encoding="utf-8") as handle:
            labels = tuple(json.load(handle)["labels"])
        alphabet = _alphabet_from_labels(labels)
        config_path = os.path.join(directory, CONFIG_FILE)
        config = {}
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as handle:
                config = json.load(handle)
        lm_kwargs = _read_lm_dir(os.path.join(directory, LM_DIR))
        return cls(
            alphabet,
            beam_width=config.get("beam_width", 100),
            token_min_logp=config.get("token_min_logp", DEFAULT_TOKEN_MIN_LOGP),
            beam_prune_logp=config.get("beam_prune_logp", DEFAULT_BEAM_PRUNE_LOGP),
            seconds_per_frame=config.get("seconds_per_frame", SECONDS_PER_FRAME),
            hotword_weight=config.get("hotword_weight", DEFAULT_HOTWORD_WEIGHT),
            tuning=config.get("tuning"),
            **lm_kwargs,
        )


def _clear_lm_dir(lm_dir: str, keep: str | None) -> None:
    """Empty ``lm_dir`` (pyctcdecode's loader wants exactly three files there), sparing the
    LM file ``keep`` when a decoder loaded from this folder is saved back into it."""
    if not os.path.isdir(lm_dir):
        return
    keep = None if keep is None else os.path.abspath(keep)
    for name in os.listdir(lm_dir):
        path = os.path.join(lm_dir, name)
        if os.path.abspath(path) == keep:
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    if keep is None:
        os.rmdir(lm_dir)  # a decoder without LM leaves no language_model folder behind


def _alphabet_from_labels(labels: tuple[str, ...]) -> CTCAlphabet:
    if BLANK_LABEL not in labels:
        raise ValueError("saved alphabet has no CTC blank label ''")
    index = {label: i for i, label in enumerate(labels)}
    return CTCAlphabet(labels, index[BLANK_LABEL], index.get(DELIMITER_LABEL), index.get(UNK_LABEL))


def _read_lm_dir(lm_dir: str) -> dict:
    """Constructor arguments for the LM saved in ``lm_dir`` (empty when there is none)."""
    if not os.path.isdir(lm_dir):
        return {}
    attrs_path = os.path.join(lm_dir, LM_ATTRS_FILE)
    lm_files = [f for f in sorted(os.listdir(lm_dir)) if f.endswith(LM_SUFFIXES)]
    if not lm_files or not os.path.isfile(attrs_path):
        raise FileNotFoundError(
            f"incomplete language model folder {lm_dir}: needs {LM_ATTRS_FILE} and one of "
            f"*{', *'.join(LM_SUFFIXES)}, found {sorted(os.listdir(lm_dir))}"
        )
    with open(attrs_path, encoding="utf-8") as handle:
        attrs = json.load(handle)
    unigrams_path = os.path.join(lm_dir, UNIGRAMS_FILE)
    unigrams = None
    if os.path.isfile(unigrams_path):
        with open(unigrams_path, encoding="utf-8") as handle:
            unigrams = handle.read().split()
    return {
        "lm_path": os.path.join(lm_dir, lm_files[0]),
        "unigrams": unigrams,
        "alpha": attrs.get("alpha", 0.5),
        "beta": attrs.get("beta", 1.0),
        "unk_score_offset": attrs.get("unk_score_offset", -10.0),
    }
