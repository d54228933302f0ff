"""Text models cut each batch's padding columns from the end (models/hf.trim_padding), so every tokenizer pads on the
right, even one whose config says left (XLNet's does): a text then reads the same alone and beside a longer one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from tiny_models import tiny_bert_source

from warmstart.data.preprocess import Tokenization
from warmstart.models import create_model


def test_a_left_padding_tokenizer_pads_on_the_right_and_predictions_do_not_depend_on_the_batch(tmp_path):
    source = Path(shutil.copytree(tiny_bert_source(), tmp_path / "left-padding-bert"))
    config = json.loads((source / "tokenizer_config.json").read_text())
    (source / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    texts = np.array(["a short one", "a much longer question about the height of a mountain"], dtype=object)
    ids = Tokenization(str(source), 24).apply(texts)
    pad = 0  # BERT's [PAD]
    assert ids[0, 0] == ids[1, 0] != pad and ids[0, -1] == pad  # both start with [CLS], the padding is at the end
    model = create_model("hf", (24,), 3, source=str(source)).eval()
    with torch.no_grad():
        together, alone = model(ids), model(ids[:1])
    assert torch.allclose(together[0], alone[0], atol=1e-5)
