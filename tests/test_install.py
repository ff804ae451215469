"""The dependency set installs together: datasets (pyarrow, numpy 2), the Trainer, pyctcdecode.

pyctcdecode 0.5.0 declares numpy<2 while pyarrow needs numpy>=2; requirements.txt installs
the re-packaged wheel in vendor/ with only that pin relaxed. These tests check that the
combination imports and that pyctcdecode really decodes under numpy 2.
"""

from __future__ import annotations

import numpy as np
import pytest


def test_numpy_is_2() -> None:
    assert int(np.__version__.split(".")[0]) >= 2


def test_import_datasets() -> None:
    import datasets

    table = datasets.Dataset.from_dict({"x": [1, 2, 3]})  # exercises pyarrow with numpy 2
    assert table.with_format("numpy")[:]["x"].tolist() == [1, 2, 3]


def test_import_trainer() -> None:
    from transformers import Trainer

    assert callable(Trainer)


def test_pyctcdecode_decodes_without_lm() -> None:
    pyctcdecode = pytest.importorskip("pyctcdecode")
    labels = ["", "a", "b", " "]  # index 0 is the CTC blank
    decoder = pyctcdecode.build_ctcdecoder(labels)
    path = [1, 1, 0, 2, 3, 1, 0]  # "a a(merged) _ b ' ' a _" -> "ab a"
    logits = np.full((len(path), len(labels)), -8.0, dtype=np.float32)  # (F, V)
    logits[np.arange(len(path)), path] = 0.0
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert decoder.decode(log_probs, beam_width=8) == "ab a"


def test_kenlm_importable_when_installed() -> None:
    kenlm = pytest.importorskip("kenlm")
    assert hasattr(kenlm, "Model")
