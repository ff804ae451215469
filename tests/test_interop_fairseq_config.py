"""fairseq config parsing (issue 23.13): ``conv_feature_layers`` in fairseq's own expression form is parsed
without ``eval``; a missing field takes fairseq's default."""

from __future__ import annotations

import pytest

from hf_w2v2.models.interop import FAIRSEQ_CONV_LAYERS, config_from_fairseq, parse_conv_layers

BASE_LAYERS = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2


def test_fairseq_default_expression_is_parsed() -> None:
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == BASE_LAYERS
    assert parse_conv_layers(FAIRSEQ_CONV_LAYERS) == BASE_LAYERS
    assert parse_conv_layers("2 * [(64, 3, 2)]") == [(64, 3, 2)] * 2
    assert parse_conv_layers(str(BASE_LAYERS)) == BASE_LAYERS
    assert parse_conv_layers([[16, 2, 2]]) == [(16, 2, 2)]  # already a list (omegaconf)


@pytest.mark.parametrize(
    "spec",
    [
        "__import__('os').system('echo pwned')",
        "[(512, 10, 5)] * 10**9",
        "[(512, 10, 5)] * 100000",
        "[(512, 10)]",
        "[(512, 10, -5)]",
        "[(512.0, 10, 5)]",
        "[]",
        "[(512, 10, 5)] +",
        "open('x')",
    ],
)
def test_anything_else_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ValueError, match="conv_feature_layers"):
        parse_conv_layers(spec)


def test_missing_or_none_fields_take_fairseq_defaults() -> None:
    config = config_from_fairseq({})
    assert list(zip(config.conv_dim, config.conv_kernel, config.conv_stride)) == BASE_LAYERS
    assert (config.hidden_size, config.num_hidden_layers, config.num_conv_pos_embeddings) == (768, 12, 128)
    assert config.feat_extract_norm == "group" and config.proj_codevector_dim == 768
    small = config_from_fairseq(
        {"encoder_embed_dim": 240, "conv_pos": None, "conv_feature_layers": "[(64, 10, 5)] + [(64, 3, 2)] * 2"}
    )
    assert (small.hidden_size, small.num_conv_pos_embeddings, small.conv_dim) == (240, 128, [64, 64, 64])
