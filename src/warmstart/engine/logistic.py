"""A linear head fitted to convergence on cached features: multinomial logistic regression by L-BFGS.

The objective is scikit-learn's ``LogisticRegression`` (multinomial, L2, lbfgs), the peers' frozen-encoder recipe::

    min_{W, b}  sum_i CE(W f_i + b, y_i) + ||W||^2 / (2 C)        (the bias is not penalised)

solved in float64 from zeros by L-BFGS (SciPy's L-BFGS-B, as scikit-learn's ``lbfgs`` solver). With ``C="auto"`` the
strength is chosen by stratified k-fold cross-validation on the training features over a log grid (held-out
accuracy, then held-out log-loss to break ties): with cached features each fit takes milliseconds, so the search
costs far less than the encoder's single pass. On few-shot text the right C differs from scikit-learn's default of 1
by orders of magnitude from one dataset to the next (benchmarks/results/text_few_shot.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

C_GRID = tuple(float(c) for c in np.logspace(-2, 3, 11))  # 0.01 .. 1000, three per decade


@dataclass(frozen=True)
class LogisticFit:
    weight: torch.Tensor  # (classes, features), float64
    bias: torch.Tensor  # (classes,)
    C: float
    iterations: int
    loss: float  # the objective per example at the solution


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, C: float,
                 max_iter: int = 1000, tolerance: float = 1e-7, start: LogisticFit | None = None) -> LogisticFit:
    """The L2-regularised multinomial logistic regression of ``labels`` on ``features`` (see the module), from
    zeros or from the solution ``start`` for a nearby C (a warm start: the cross-validation walks up its grid).

    Solved as scikit-learn's ``lbfgs`` solver does: SciPy's L-BFGS-B on the objective and its analytic gradient,
    in NumPy. The problems are tiny (a few hundred examples by a few hundred features), so torch's per-operation
    dispatch (about a thousand small operations per iteration in ``torch.optim.LBFGS``) cost 100x the arithmetic,
    and the cross-validation's 55 fits took 20 s on a loaded machine; they now take well under a second. (The
    torch version also reported the objective at its starting point, not at the solution.)"""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    x = features.detach().to("cpu", torch.float64).numpy()
    y = labels.detach().to("cpu", torch.long).numpy()
    n, dim = x.shape
    one_hot = np.zeros((n, num_classes))
    one_hot[np.arange(n), y] = 1.0
    if start is None:
        theta = np.zeros(num_classes * (dim + 1))
    else:
        theta = np.concatenate([start.weight.numpy().ravel(), start.bias.numpy()])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = theta[:num_classes * dim].reshape(num_classes, dim), theta[num_classes * dim:]
        logits = x @ weight.T + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_normaliser = np.log(np.exp(logits).sum(axis=1))
        # divided by n, so the tolerances mean the same for 10 examples and for 100,000
        loss = (log_normaliser.sum() - (logits * one_hot).sum() + (weight ** 2).sum() / (2 * C)) / n
        residual = np.exp(logits - log_normaliser[:, None]) - one_hot
        gradient = np.concatenate([(residual.T @ x + weight / C).ravel(), residual.sum(axis=0)]) / n
        return float(loss), gradient

    # scikit-learn's settings for the same solver (sklearn/linear_model/_logistic.py)
    # One BLAS thread: OpenBLAS's pool spins for matrices this small, 40x slower on a busy machine.
    with threadpool_limits(1, user_api="blas"):
        result = minimize(objective, theta, jac=True, method="L-BFGS-B",
                          options={"maxiter": max_iter, "maxls": 50, "gtol": tolerance,
                                   "ftol": 64 * np.finfo(float).eps, "maxcor": 20})
    weight = torch.from_numpy(result.x[:num_classes * dim].reshape(num_classes, dim).copy())
    bias = torch.from_numpy(result.x[num_classes * dim:].copy())
    return LogisticFit(weight, bias, C, int(result.nit), float(result.fun))


def choose_c(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, grid=C_GRID, folds: int = 5,
             seed: int = 0, written: int = 0) -> tuple[float, dict[float, float]]:
    """The C of ``grid`` with the best stratified ``folds``-fold held-out accuracy (ties: lower held-out log-loss,
    then the smaller C), and each C's held-out accuracy. Above 2,000 examples, 3 folds and one C per decade. With
    fewer than 2 examples in some class there is nothing to hold out: C = 1, scikit-learn's default, no scores.
    ``written``: the last rows are examples written from the class names (``DataSplits.synthetic``): they join
    every fold's training rows and are never held out (identical copies scored 0.88 where the labelled texts
    scored 0.1, and chose C by the copies)."""
    from sklearn.model_selection import StratifiedKFold

    x, labels = features.detach().to("cpu", torch.float64), labels.cpu()
    real = len(labels) - written
    y, written_rows = labels[:real].numpy(), np.arange(real, len(labels))
    if len(y) > 2000:  # each fit costs more and each fold holds out more: 3 folds, one C per decade
        folds, grid = min(folds, 3), tuple(c for c in grid if math.log10(c).is_integer())
    smallest = int(np.bincount(y, minlength=num_classes)[np.unique(y)].min())
    folds = min(folds, smallest)
    if folds < 2:
        return 1.0, {}
    splits = [(np.concatenate([fit_idx, written_rows]), held_idx) for fit_idx, held_idx in
              StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)]
    correct = {c: 0 for c in grid}
    log_loss = {c: 0.0 for c in grid}
    for train_idx, held_idx in splits:
        fit = None
        for c in sorted(grid):  # strongest penalty first; each fit starts from the previous solution
            fit = fit_logistic(x[train_idx], labels[train_idx], num_classes, C=c, start=fit)
            logits = x[held_idx] @ fit.weight.T + fit.bias
            correct[c] += int((logits.argmax(1) == labels[held_idx]).sum())
            log_loss[c] += float(nn.functional.cross_entropy(logits, labels[held_idx], reduction="sum"))
    results = {c: (correct[c] / len(y), log_loss[c] / len(y)) for c in grid}
    best = max(grid, key=lambda c: (results[c][0], -results[c][1], -c))
    return best, {c: accuracy for c, (accuracy, _) in results.items()}


def fit_linear_head(head: nn.Linear, train: tuple[torch.Tensor, torch.Tensor],
                    val: tuple[torch.Tensor, torch.Tensor] | None, *, C: float | str = "auto",
                    seed: int = 0, written: int = 0) -> tuple[dict, dict]:
    """Fit ``head`` in place on cached ``(features, labels)``; returns the log of the fit (shaped like one epoch
    of the loop's, so logs and reports read it the same way) and a summary with the time it took."""
    started = time.perf_counter()
    features, labels = train
    chosen, cv_accuracy = (choose_c(features, labels, head.out_features, seed=seed, written=written) if C == "auto"
                           else (float(C), {}))
    fit = fit_logistic(features, labels, head.out_features, C=chosen)
    with torch.no_grad():
        head.weight.copy_(fit.weight.to(head.weight))
        head.bias.copy_(fit.bias.to(head.bias))
        train_logits = features.to(head.weight) @ head.weight.T + head.bias
    logs = {"epoch": 1, "train_loss": float(nn.functional.cross_entropy(train_logits, labels.to(head.weight.device))),
            "train_accuracy": float((train_logits.argmax(1).cpu() == labels.cpu()).float().mean()),
            "solver": "lbfgs", "C": chosen, "iterations": fit.iterations, "objective": fit.loss}
    if cv_accuracy:
        logs["cv_accuracy"] = {f"{c:.4g}": round(a, 6) for c, a in cv_accuracy.items()}
    if val is not None:
        with torch.no_grad():
            val_logits = val[0].to(head.weight) @ head.weight.T + head.bias
        logs["val_loss"] = float(nn.functional.cross_entropy(val_logits, val[1].to(head.weight.device)))
        logs["val_accuracy"] = float((val_logits.argmax(1).cpu() == val[1].cpu()).float().mean())
    elapsed = time.perf_counter() - started
    logs["epoch_time_s"] = elapsed
    if not math.isfinite(logs["train_loss"]):
        raise FloatingPointError(f"the L-BFGS fit of the head diverged (C={chosen})")
    return logs, {"train_time_s": elapsed, "steps": fit.iterations}
