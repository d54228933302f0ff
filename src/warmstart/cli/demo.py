"""``warmstart demo``: the README's headline experiment in one command."""

from __future__ import annotations

from . import render
from .app import app
from .command import Given, command
from .defaults import from_api
from .options import DATA, OUTPUT_OPTIONS, Group, Opt

DEMO_OPTIONS = Group(
    Opt("shots", ("--shots",), int, "Labelled target images per class.", from_api("shots"), min=1),
    Opt("seeds", ("--seeds",), int, "Few-shot draws (and training seeds) to average.", from_api("seeds"), min=1),
    Opt("pretrain_epochs", ("--pretrain-epochs",), int, "Source pretraining epochs.", from_api("pretrain_epochs"),
        min=1),
    Opt("finetune_epochs", ("--finetune-epochs",), int, "Fine-tuning epochs of every arm.",
        from_api("finetune_epochs"), min=1),
    Opt("data", ("--data",), str, "Images with at least 10 classes.", from_api("data"), DATA),
    OUTPUT_OPTIONS.pick("out")[0].with_(default=from_api("out"), help="Folder of the demo's runs."),
    *OUTPUT_OPTIONS.pick("as_json", "quiet"),
)


@command(app, "demo", DEMO_OPTIONS)
def demo(given: Given) -> None:
    """Pretrain on Fashion-MNIST 0-4, fine-tune on 5-9 from K images per class, compare with scratch."""
    from ..demo import demo as run_demo

    result = run_demo(shots=given.shots, seeds=given.seeds, pretrain_epochs=given.pretrain_epochs,
                      finetune_epochs=given.finetune_epochs, data=given.data, out=given.out,
                      progress=not (given.quiet or given.as_json))
    if given.as_json:
        render.print_json(result)
    else:
        render.print_demo(result, given.out)
