"""Contrastive losses over two views of a batch: pure functions of the embeddings, knowing nothing of training.

Both take ``z1`` and ``z2``, (N, d): row i of each is a view of the same example (two augmentations of an image, or
one text through two dropout masks). Similarities are cosines, divided by the temperature tau.

:func:`nt_xent_loss` (SimCLR) contrasts each of the 2N embeddings with the 2N - 1 others; :func:`info_nce_loss`
(SimCSE) contrasts each first view with the N second views only. ``rows`` lets a process of a data-parallel run
compute the loss of its own examples' anchors against every example of the global batch (gathered from all
processes): the mean over ``rows`` alone, whose size-weighted sum over processes is the whole batch's loss.
"""

from __future__ import annotations

import warnings

import torch
from torch.nn import functional as F


def _anchor_rows(n: int, rows: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    return torch.arange(n, device=device) if rows is None else rows.to(device)


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, *,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

    Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020, eq. (1). With the 2N embeddings u_1..u_2N (the first views, then the second views), s_ij =
    cos(u_i, u_j) / tau and p(i) the other view of example i,

        l_i = -log( exp(s_i,p(i)) / sum_{k != i} exp(s_ik) ),      L = 1/(2N) sum_i l_i

    Every other embedding of the batch, the same view's included, is a negative (2N - 2 of them). ``rows``: average
    over the anchors of these examples only (both of their views), as one process of a gathered batch does.
    """
    n = len(z1)
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    anchors = _anchor_rows(n, rows, u.device)
    anchors = torch.cat([anchors, anchors + n])  # both views of each chosen example
    logits = u[anchors] @ u.T / temperature
    logits[torch.arange(len(anchors), device=u.device), anchors] = float("-inf")  # an embedding is not its own pair
    positives = (anchors + n) % (2 * n)
    return F.cross_entropy(logits, positives)


def info_nce_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.05, *,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """The in-batch InfoNCE loss of unsupervised SimCSE.

    Gao, Yao & Chen, "SimCSE: Simple Contrastive Learning of Sentence Embeddings", EMNLP 2021, eq. (1): with h_i and
    h_i' the two dropout views of sentence i and sim the cosine,

        l_i = -log( exp(sim(h_i, h_i') / tau) / sum_{j=1..N} exp(sim(h_i, h_j') / tau) ),    L = 1/N sum_i l_i

    The first views are the anchors, the second views the candidates (the other sentences' second views are the
    negatives). ``rows``: average over these anchors only.
    """
    a, b = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    anchors = _anchor_rows(len(a), rows, a.device)
    return F.cross_entropy(a[anchors] @ b.T / temperature, anchors)


def gather_with_gradients(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Under DDP, every process's ``z`` (its share of the batch) concatenated in rank order, differentiable: the
    backward pass sums each process's gradients into the owner's rows (``torch.distributed.nn.functional
    .all_gather``). Returns the gathered rows and the indices of this process's own rows among them. Shares may
    differ by one row (``torch.tensor_split``); they are padded for the collective and trimmed after it.
    In one process: ``z`` and all its rows."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z, torch.arange(len(z), device=z.device)
    from torch.distributed.nn.functional import all_gather

    world, rank = dist.get_world_size(), dist.get_rank()
    count = torch.tensor([len(z)], device=z.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    padded = F.pad(z, (0, 0, 0, max(sizes) - len(z)))
    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public differentiable one
        warnings.simplefilter("ignore")
        parts = all_gather(padded)
    start = sum(sizes[:rank])
    return (torch.cat([part[:size] for part, size in zip(parts, sizes)]),
            torch.arange(start, start + len(z), device=z.device))
