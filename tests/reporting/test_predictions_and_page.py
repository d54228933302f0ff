"""The saved predictions and examples, and the page built from them, on hand-made inputs: the most confused pairs
come first, texts are quoted and escaped, vectors shown by their first values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from warmstart.errors import WarmstartError
from warmstart.evaluation import evaluate_predictions
from warmstart.reporting import load_predictions, render_report, save_predictions
from warmstart.reporting.predictions import confused_pairs


def write_run(folder, x, kind, y_true, probabilities, class_names):
    metrics = evaluate_predictions(y_true, probabilities.argmax(1), class_names)
    (folder / "metrics.json").write_text(json.dumps({**metrics.to_dict(), "split": "test",
                                                     "data": {"source": "hand-made"}}))
    save_predictions(folder, x, y_true, probabilities, class_names, kind)


def test_confused_pairs_are_the_largest_off_diagonal_cells():
    cm = np.array([[9, 4, 0], [1, 7, 6], [0, 0, 5]])
    assert confused_pairs(cm, top=2) == [(1, 2, 6), (0, 1, 4)]
    assert confused_pairs(np.diag([3, 4])) == []


def test_text_examples_are_quoted_escaped_and_the_most_confident_mistakes(tmp_path):
    texts = np.array(["<b>great</b> & fine", "awful", "so-so <script>x</script>", "lovely", "meh"], dtype=object)
    y_true = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    write_run(tmp_path, texts, "text", y_true, probabilities, ("good", "<bad>"))
    examples = json.loads((tmp_path / "examples.json").read_text())
    (first, second) = examples["pairs"]
    assert (first["true"], first["predicted"], first["count"]) == (1, 0, 2)  # "so-so" and "meh"
    assert [e["text"] for e in first["examples"]] == ["so-so <script>x</script>", "meh"]  # most confident first
    assert second["examples"][0]["text"] == "<b>great</b> & fine"
    y, p = load_predictions(tmp_path)
    assert (y == y_true).all() and np.allclose(p, probabilities, atol=1e-6)
    page = render_report(tmp_path)
    assert "<blockquote>so-so &lt;script&gt;x&lt;/script&gt;</blockquote>" in page
    assert "<blockquote>&lt;b&gt;great&lt;/b&gt; &amp; fine</blockquote>" in page
    assert "<script>" not in page and "<b>&lt;bad&gt;</b> predicted as <b>good</b>: 2 times" in page


def test_vector_examples_show_their_first_values(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(2, 20)
    write_run(tmp_path, x, "vector", np.array([0, 1]), np.array([[0.1, 0.9], [0.8, 0.2]]), ("a", "b"))
    page = render_report(tmp_path)
    assert "<code>0.0, 1.0, 2.0" in page and "11.0 ...</code>" in page


def test_a_folder_without_results_is_refused(tmp_path):
    with pytest.raises(WarmstartError, match="nothing to report"):
        render_report(tmp_path)


def test_large_images_become_small_thumbnails_and_long_texts_are_cut(tmp_path):
    import base64
    import io

    from PIL import Image

    images = np.random.default_rng(0).random((2, 3, 300, 200)).astype(np.float32)
    write_run(tmp_path, images, "image", np.array([0, 1]), np.array([[0.1, 0.9], [0.8, 0.2]]), ("a", "b"))
    example = json.loads((tmp_path / "examples.json").read_text())["pairs"][0]["examples"][0]
    thumbnail = Image.open(io.BytesIO(base64.b64decode(example["image_png_base64"])))
    assert thumbnail.size == (64, 96) and thumbnail.mode == "RGB"
    write_run(tmp_path, np.array(["x" * 2000, "y"], dtype=object), "text", np.array([0, 1]),
              np.array([[0.1, 0.9], [0.8, 0.2]]), ("a", "b"))
    texts = [e["text"] for p in json.loads((tmp_path / "examples.json").read_text())["pairs"] for e in p["examples"]]
    assert sorted(map(len, texts)) == [1, 501]
