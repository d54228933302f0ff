"""``warmstart shift``: how far a target dataset lies from a source dataset in a model's feature space.

Both datasets' test splits go through the checkpoint's preprocessing and backbone (``forward_features``, via the
feature cache); every registered shift measure then compares the two feature samples, and a verdict sums them up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .base import SHIFT_MEASURES, Sample

ALPHA = 0.05  # the permutation test's significance level
# proxy A-distance bands for the verdict's wording: below 0.5 a linear classifier separates the domains barely
# better than chance (ε > 0.375); above 1.5 it separates them almost always (ε < 0.125)
SMALL, LARGE = 0.5, 1.5


@dataclass(frozen=True)
class ShiftResult:
    scores: dict[str, Any]
    verdict: str
    source: str
    target: str
    source_examples: int
    target_examples: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(scores: dict[str, Any], alpha: float = ALPHA) -> str:
    """One line: whether the MMD test finds a shift, how large the proxy A-distance says it is, and label shift."""
    p, distance = scores["mmd_p_value"], scores["proxy_a_distance"]
    if p >= alpha:
        line = (f"no significant shift in feature space (MMD p = {p:.3g} >= {alpha}); proxy A-distance "
                f"{distance:.2f}")
    else:
        size = "small" if distance < SMALL else "large" if distance >= LARGE else "moderate"
        line = (f"{size} shift in feature space: MMD² {scores['mmd2']:.4g} (p = {p:.3g} < {alpha}), proxy "
                f"A-distance {distance:.2f} (a domain classifier errs on {100 * scores['domain_classifier_error']:.1f}%"
                " of examples)")
    if "label_total_variation" in scores:
        if scores["shared_classes"] == 0:
            line += "; the label sets are disjoint"
        elif scores["label_total_variation"] > 0.05 and scores.get("label_shift_p_value", 0.0) < alpha:
            line += (f"; the label distribution shifts too (total variation {scores['label_total_variation']:.2f}, "
                     f"chi-square p = {scores['label_shift_p_value']:.3g})")
        else:
            line += "; label distributions agree" + (
                f" within sampling noise (total variation {scores['label_total_variation']:.2f}, chi-square p = "
                f"{scores['label_shift_p_value']:.3g})" if scores["label_total_variation"] > 0.05 else "")
    return line


def measure_samples(source: Sample, target: Sample, *, permutations: int = 200, seed: int = 0) -> dict[str, Any]:
    """Every registered measure's scores on two samples, in one flat dict."""
    scores: dict[str, Any] = {}
    for name in SHIFT_MEASURES.names():
        options = {"permutations": permutations} if name == "mmd" else {}
        scores.update(SHIFT_MEASURES.create(name, source, target, seed=seed, **options))
    return scores


def _subsample(features: np.ndarray, labels: np.ndarray, limit: int, rng: np.random.Generator):
    if len(labels) <= limit:
        return features, labels
    keep = np.sort(rng.choice(len(labels), limit, replace=False))
    return features[keep], labels[keep]


def measure_shift(checkpoint: str | Path, source, target, *, samples: int = 1000, permutations: int = 200,
                  seed: int = 0, device: str = "auto") -> ShiftResult:
    """Shift scores between the test splits of ``source`` and ``target`` (DataConfigs) in ``checkpoint``'s feature
    space, each side subsampled (seeded) to at most ``samples`` examples."""
    from ..config import check_parameter, is_int
    from ..data import load_split
    from ..data.fit import fit_to_model
    from ..data.preprocess import preprocessing_from_dict
    from ..engine import resolve_device
    from ..engine.features import cached_features
    from ..errors import WarmstartError
    from ..models import load_checkpoint

    if samples < 10:
        raise WarmstartError(f"--samples {samples}: the shift measures need at least 10 examples per side",
                             hint="set --samples to 10 or more, e.g. --samples 1000")
    if permutations < 1:
        raise WarmstartError(f"--permutations {permutations}: expected a positive number",
                             hint="set --permutations to 1 or more, e.g. --permutations 200")
    check_parameter(is_int(seed) and seed >= 0, "seed", "an integer >= 0", seed)
    started = time.perf_counter()
    net, info = load_checkpoint(checkpoint)
    norm = preprocessing_from_dict(info.preprocessing)
    run_device = resolve_device(device)
    name = f"checkpoint {checkpoint}"
    sides = []
    rng = np.random.default_rng(seed)
    for role, data in (("source", source), ("target", target)):
        dataset = load_split(data, "test")
        if dataset.kind != info.kind:
            raise WarmstartError(f"--{role} {data.source!r} holds {dataset.kind} data, but {name} takes {info.kind}",
                                 hint=f"pass as --{role} a dataset of {info.kind} data, the kind the checkpoint "
                                      "was trained on")
        # the model's own input pipeline (recorded resize and interpolation, feature columns by name)
        dataset = fit_to_model(dataset, net.input_shape, norm, model_name=name, resize=data.resize,
                               feature_names=info.extra.get("feature_names"))
        features = cached_features(net, norm.apply(dataset.x), run_device)[0].numpy()
        features, labels = _subsample(features, dataset.y, samples, rng)
        sides.append((dataset, Sample(features, labels, dataset.class_names)))
    (source_set, source_sample), (target_set, target_sample) = sides
    scores = measure_samples(source_sample, target_sample, permutations=permutations, seed=seed)
    return ShiftResult(scores=scores, verdict=verdict(scores), source=source_set.name, target=target_set.name,
                       source_examples=len(source_sample.labels), target_examples=len(target_sample.labels),
                       settings={"checkpoint": str(checkpoint), "samples": samples, "permutations": permutations,
                                 "seed": seed, "alpha": ALPHA, "split": "test",
                                 "feature_dim": int(source_sample.features.shape[1]),
                                 "time_s": time.perf_counter() - started})
