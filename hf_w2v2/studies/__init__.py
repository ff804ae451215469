"""Reproducible experiments built from the recipes below them: :mod:`.low_label` (the paper's
Table 1 in miniature: pre-trained vs random init with 10 min / 1 h / all labels, greedy and LM)."""
