"""``warmstart distill``: a fine-tuned teacher into a smaller student, with every training option of finetune."""

from __future__ import annotations

from typing import Optional

from . import build, render
from .app import app
from .command import Given, command
from .defaults import from_api
from .options import (DATA, DATA_OPTIONS, LAUNCH_OPTIONS, MODEL, MODEL_OPTIONS, OUTPUT_OPTIONS, REQUIRED,
                      SCALING_OPTIONS, TRACKING_OPTIONS, TRAINING_OPTIONS, Group, Opt)

DISTILLATION = "Distillation"

DISTILL_OPTIONS = Group(
    Opt("teacher", ("--teacher",), str, "The fine-tuned teacher: a run folder or checkpoint.", REQUIRED, MODEL),
    Opt("student", ("--student",), str, "layers=K (the teacher's text encoder cut to K layers, every other one), "
        "layers=0,1 (those layers; --model-option intermediate_size=N also prunes each layer's feed-forward "
        "block to its N neurons that carry the most on the training texts), "
        "hf:SOURCE or minilm (a smaller encoder), or a registered model trained on the teacher's inputs (cnn, mlp, "
        "timm; its options with --model-option).", REQUIRED, MODEL),
    Opt("unlabeled", ("--unlabeled",), Optional[str], "Unlabelled inputs extending the transfer set: a .txt (one "
        "text per line), a .csv/.jsonl/.parquet text column, a folder of images, an .npz with x; read with --data's "
        "--text-column and --resize (a labelled dataset: its train split's inputs, labels ignored).",
        from_api("unlabeled"), DATA),
    Opt("temperature", ("--temperature",), float, "Softens teacher and student outputs in the KL term.",
        from_api("temperature"), DISTILLATION),
    Opt("alpha", ("--alpha",), float, "Weight of the cross-entropy on the labels (1 - alpha: the teacher's KL).",
        from_api("alpha"), DISTILLATION),
    Opt("feature_weight", ("--feature-weight",), float, "Weight of the cosine loss pulling the student's feature "
        "vectors towards the teacher's (DistilBERT's; 0: none). Needs features of one width: a layers=K student.",
        from_api("feature_weight"), DISTILLATION),
    Opt("mask_tokens", ("--mask-tokens",), float, "Text: the share of each training text's tokens replaced by the "
        "mask token, one copy read by teacher and student, a new draw every step (0: none). Needs the teacher's "
        "tokenizer: a layers=K student.", from_api("mask_tokens"), DISTILLATION),
    Opt("speed_rounds", ("--speed-rounds",), int, "Timed rounds of the CPU speed comparison (0: skip it).",
        from_api("speed_rounds"), DISTILLATION),
)


@command(app, "distill", DATA_OPTIONS, DISTILL_OPTIONS,
         MODEL_OPTIONS.pick("model_option").with_help(model_option="KEY=VALUE, repeatable: the student's options "
                                                                   "(e.g. widths=[4,8,16] for cnn; "
                                                                   "intermediate_size=N for a layers= student)."),
         TRAINING_OPTIONS, SCALING_OPTIONS, LAUNCH_OPTIONS, TRACKING_OPTIONS, OUTPUT_OPTIONS)
def distill(given: Given) -> None:
    """Distil a fine-tuned teacher into a smaller student (the teacher's soft targets, on the fly, on the student's
    inputs); report accuracy, agreement, size and CPU speed of both."""
    if build.launched(given):
        return
    from .. import api
    from ..config import ModelConfig

    options = build.key_values(given.model_option, "--model-option")
    result = api.distill(given.teacher, build.data_config(given), student=ModelConfig(given.student, options)
                         if options else given.student, out=given.out, unlabeled=given.unlabeled,
                         temperature=given.temperature, alpha=given.alpha, feature_weight=given.feature_weight,
                         mask_tokens=given.mask_tokens,
                         train=build.train_config(given),
                         resume=given.resume, speed_rounds=given.speed_rounds, **given.changed("overwrite"))
    render.print_metrics(result.run.metrics, f"distill: student test ({given.data})", given.as_json,
                         result.run.run_dir)
    if result.comparison and not given.as_json:
        from ..reporting.distillation import comparison_sentence

        print(comparison_sentence(result.comparison).replace("`", ""))
