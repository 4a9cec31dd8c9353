"""Recall@K for image retrieval (Song et al. 2016): the share of queries whose K nearest other
images (cosine similarity; the query itself excluded) include one of the query's class.

Every test image is a query and the rest of the test set its gallery. Similarities are computed
one block of queries at a time on the embeddings' device, keeping only each block's top K, so a
60,000-image gallery never needs its 60k x 60k matrix at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

TIE_SCALE = 2.0**20  # cosines closer than ~1e-6 count as equal


def recall_at_k(
    embeddings: torch.Tensor, labels: torch.Tensor, ks: Sequence[int], block: int = 1024
) -> dict[int, float]:
    """Recall@K (in [0, 1]) for each K in ``ks``. Ties in similarity are broken by the lower
    index, as a stable sort would (cosines within ~1e-6 are equal); K larger than the gallery
    counts the whole gallery."""
    n = embeddings.shape[0]
    if n < 2:
        raise ValueError("Recall@K needs at least two test images (each query's gallery is the others)")
    emb = F.normalize(embeddings.float(), dim=1)
    labels = labels.to(emb.device)
    k_max = min(max(ks), n - 1)
    hits = {k: 0 for k in ks}
    for start in range(0, n, block):
        q = emb[start : start + block]
        # similarities equal up to float32 rounding (duplicate or parallel embeddings) are ties
        sim = (q @ emb.T * TIE_SCALE).round()
        rows = torch.arange(q.shape[0], device=emb.device)
        sim[rows, rows + start] = float("-inf")  # a query is not its own neighbour
        # stable ordering: equal similarities rank by gallery index (topk alone does not promise it)
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k_max]
        same = labels[order] == labels[start : start + block, None]
        first = torch.where(same.any(1), same.float().argmax(1), torch.full_like(rows, k_max))  # rank of 1st hit
        for k in ks:
            hits[k] += int((first < min(k, k_max)).sum())
    return {k: hits[k] / n for k in ks}


@torch.no_grad()
def embed_all(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False, amp_dtype=None):
    """(embeddings, labels) of every image the loader yields, through ``model.embed``."""
    model.eval()
    out, ys = [], []
    for x, y, _ in loader:
        x = x.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp):
            out.append(model.embed(x).float())
        ys.append(y.to(device))
    return torch.cat(out), torch.cat(ys)


def evaluate_recall(
    model: nn.Module, loader: DataLoader, device: torch.device, ks: Sequence[int], amp: bool = False, amp_dtype=None
) -> dict[str, float]:
    """``recall_at_<k>`` metrics in percent, the paper's unit."""
    emb, labels = embed_all(model, loader, device, amp, amp_dtype)
    if not torch.isfinite(emb).all():
        return {f"recall_at_{k}": float("nan") for k in ks}
    return {f"recall_at_{k}": 100.0 * r for k, r in recall_at_k(emb, labels, ks).items()}
