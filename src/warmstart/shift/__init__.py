"""Measuring dataset shift in a model's feature space: one measure per file, registered by name
(``warmstart list shift-measures``)."""

# importing each measure's module registers it
from . import label_shift, mmd  # noqa: F401  (proxy_a_distance: imported below)
from .base import SHIFT_MEASURES, Sample
from .label_shift import label_histograms
from .measure import ShiftResult, measure_samples, measure_shift, verdict
from .mmd import MmdTest, mmd_permutation_test
from .proxy_a_distance import proxy_a_distance

__all__ = ["SHIFT_MEASURES", "Sample", "ShiftResult", "measure_samples", "measure_shift", "verdict", "MmdTest",
           "mmd_permutation_test", "proxy_a_distance", "label_histograms"]
