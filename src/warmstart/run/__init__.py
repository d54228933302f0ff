"""The run layer, between the public API (``api.py``) and the lower floors (data, models, strategies, engine):

- :mod:`~warmstart.run.starting_point`: checkpoint, pretrained model or scratch; the head rule; lineage.
- :mod:`~warmstart.run.trainer`: a training run from its checks to the saved result (``pretrain``/``finetune``).
- :mod:`~warmstart.run.training`: the training dispatch the trainer calls (the engine's to replace).
- :mod:`~warmstart.run.scoring`: a model's metrics on a split.
- :mod:`~warmstart.run.evaluation`: ``evaluate``.
- :mod:`~warmstart.run.folder`: the run folder, the one owner of its layout.
- :mod:`~warmstart.run.fingerprint`: the data fingerprint that ``resume`` checks.

Imports go one way: ``api`` -> ``run`` -> data, models, strategies, engine, adaptation, reporting. ``selection``
(``--from auto``) imports ``run``; ``run`` never imports ``api`` or ``selection``.
"""
