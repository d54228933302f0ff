"""The run report and the model card, built from real tiny runs: their contents, escaping, the page opening in
headless Chromium with every plot drawn, and the compare report with the gain each model card then states."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.cli import main

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    warmstart.pretrain("digits", model="mlp", train=TrainConfig(epochs=4, progress=False, trackers=()),
                       out=out)
    return out


@pytest.fixture(scope="module")
def run(source, tmp_path_factory):
    """lp-ft (two phases) from 8 digits per class, with a validation split: curves, mistakes and phases."""
    out = tmp_path_factory.mktemp("run") / "lp-ft"
    warmstart.finetune(source, DataConfig("digits", classes="5-9", shots=8, val_fraction=0.25), strategy="lp-ft",
                       train=TrainConfig(epochs=6, batch_size=8, progress=False, trackers=()), out=out)
    return out


def test_a_run_folder_holds_the_report_its_predictions_and_examples(run):
    files = {p.name for p in run.iterdir()}
    assert {"report.html", "MODEL_CARD.md", "predictions.npz", "examples.json", "metrics.json"} <= files
    with np.load(run / "predictions.npz") as saved:
        metrics = json.loads((run / "metrics.json").read_text())
        assert saved["probabilities"].shape == (metrics["num_examples"], 5)
        assert np.allclose(saved["probabilities"].sum(1), 1, atol=1e-5)
        assert (saved["probabilities"].argmax(1) == saved["y_true"]).mean() == pytest.approx(metrics["accuracy"])
    examples = json.loads((run / "examples.json").read_text())
    cm = np.array(metrics["confusion_matrix"])
    np.fill_diagonal(cm, 0)
    first = examples["pairs"][0]
    assert first["count"] == cm.max() and cm[first["true"], first["predicted"]] == cm.max()
    assert first["examples"] and all("image_png_base64" in e for e in first["examples"])
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["trainable"] for e in log] == ["head"] * 3 + ["layer1+layer2+head"] * 3 or \
        log[0]["trainable"] == "head" and log[-1]["trainable"].endswith("+head")


def test_the_report_shows_every_section_and_fetches_nothing(run):
    page = (run / "report.html").read_text()
    for heading in ("Test metrics", "Learning curves", "Confusion matrix", "Per-class scores",
                    "Most confused classes", "Calibration", "Configuration", "Notes"):
        assert f"<h2>{heading}" in page, heading
    assert "Expected calibration error" in page and "phase" in page
    assert len(re.findall(r'<img class="thumb"', page)) >= 1
    # offline: every image is inline data, and nothing names a network address to fetch
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', page))
    assert not re.search(r"https?://|<script|<link|@import|url\(", page)


def test_report_command_rebuilds_the_page_and_escapes_text(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "report.html").unlink()
    config = json.loads((copy / "config.json").read_text())
    config["notes"] = ['<script>alert("x")</script> & more']
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(copy)])
    assert exit_info.value.code == 0
    assert "report.html" in capsys.readouterr().out
    page = (copy / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2


def test_the_model_card_states_lineage_intervals_and_limits(run, source):
    card = (run / "MODEL_CARD.md").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"checkpoint `{source}`" in card and "Source data: `digits`" in card
    assert "Target data: `digits`, classes 5-9, 8 shots per class" in card and "Strategy: `lp-ft`" in card
    accuracy_row = next(line for line in card.splitlines() if line.startswith("| accuracy"))
    low, high = map(float, re.findall(r"(\d\.\d{4}) to (\d\.\d{4})", accuracy_row)[0])
    assert low < metrics["accuracy"] < high and f"{metrics['accuracy']:.4f}" in accuracy_row
    assert "bootstrap" in card and "expected calibration error" in card
    assert "Not measured: run `warmstart compare`" in card
    assert "Few shots" in card and "Calibration: ECE" in card and "Domain" in card


def _plots_drawn(screenshot_png: bytes, rects: list[dict]) -> list[float]:
    """The share of non-white pixels inside each image's on-screen box of the screenshot."""
    from PIL import Image

    shot = np.asarray(Image.open(io.BytesIO(screenshot_png)).convert("L"), dtype=np.float64)
    shares = []
    for r in rects:
        box = shot[int(r["top"]):int(r["top"] + r["height"]), int(r["left"]):int(r["left"] + r["width"])]
        shares.append(float((box < 240).mean()) if box.size else 0.0)
    return shares


def test_the_report_renders_in_headless_chromium(run, tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"needs Chromium ({CHROMIUM}) and chromedriver ({CHROMEDRIVER}): Debian packages chromium "
                    "and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get((run / "report.html").resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => ({cls: i.className, complete: i.complete, "
            "w: i.naturalWidth, h: i.naturalHeight}))")
        assert len([i for i in images if i["cls"] == "plot"]) >= 3  # curves, confusion matrix, reliability
        assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in images), images
        shares = []
        for index in range(len([i for i in images if i["cls"] == "plot"])):
            # scroll each plot into view, then read its box and the screenshot of what is on screen
            rect = driver.execute_script(
                "const img = document.querySelectorAll('img.plot')[arguments[0]]; img.scrollIntoView(); "
                "const r = img.getBoundingClientRect(); return {left: r.left, top: r.top, width: Math.min(r.width, "
                "window.innerWidth - r.left), height: Math.min(r.height, window.innerHeight - r.top)}", index)
            shares += _plots_drawn(driver.get_screenshot_as_png(), [rect])
        # a drawn plot has axes, lines and labels: well above a blank box, well below a solid fill
        assert all(0.02 < share < 0.9 for share in shares), shares
    finally:
        driver.quit()


def test_a_compare_report_plots_accuracy_against_shots_and_cards_state_the_gain(source, tmp_path):
    from warmstart.compare import compare

    out = tmp_path / "compare"
    result = compare(source, DataConfig("digits", classes="5-9"), strategies=("full",), shots=(5, 10), seeds=2,
                     train=TrainConfig(epochs=3, batch_size=8, progress=False, trackers=()), out=out)
    page = (out / "report.html").read_text()
    assert "Accuracy against shots" in page and "Transfer gain over scratch" in page
    cell = result.cell("full", 10)
    assert f"{cell.gain_points_mean:+.1f} ± {cell.gain_points_std:.1f}" in page
    assert page.count("report.html") >= 8  # links to every run's own report
    base64.b64decode(re.findall(r'src="data:image/png;base64,([^"]*)"', page)[0], validate=True)
    card = (out / "runs" / "full" / "shots10" / "seed1" / "MODEL_CARD.md").read_text()
    assert f"{cell.gain_points_mean:+.2f} ± {cell.gain_points_std:.2f} accuracy points for `full` at 10 shots" \
        in card
    assert "Not applicable: this model was trained from scratch" in \
        (out / "runs" / "scratch" / "shots5" / "seed0" / "MODEL_CARD.md").read_text()


def test_evaluate_writes_a_report_without_a_model_card(run, tmp_path):
    metrics = warmstart.evaluate(run, DataConfig("digits", classes="5-9"), out=tmp_path / "eval")
    files = {p.name for p in (tmp_path / "eval").iterdir()}
    assert {"report.html", "predictions.npz", "examples.json", "metrics.json"} <= files
    assert "MODEL_CARD.md" not in files and "tensorboard" not in files
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "warmstart evaluate" in page and f"{metrics.accuracy:.4f}" in page
    assert "<h2>Learning curves" not in page  # evaluation trains nothing
