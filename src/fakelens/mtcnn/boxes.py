"""Box arithmetic of the cascade: squaring, regression, the pixel windows cut for R-Net/O-Net, and the
last non-maximum suppression (overlap over the smaller box).

The rounding follows the original MATLAB MTCNN, as facenet-pytorch 2.6 does, so both give the same faces.
"""

from __future__ import annotations

import numpy as np
import torch


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow (x1, y1, x2, y2) boxes to squares about their centres (MTCNN's ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply R-Net/O-Net box offsets, which are fractions of the (inclusive, +1) box size."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * torch.stack([w, h, w, h], dim=1)


def crop_windows(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Integer pixel windows [x0, y0, x1, y1) that the original cascade crops for each box.

    MTCNN came from MATLAB: coordinates are truncated, clipped to 1..size, and the window starts one
    pixel before the truncated corner. facenet-pytorch keeps this, and so do we, so that R-Net and
    O-Net see the same pixels and give the same scores.
    """
    b = boxes.trunc().long()
    x0 = b[:, 0].clamp(min=1) - 1
    y0 = b[:, 1].clamp(min=1) - 1
    x1 = b[:, 2].clamp(max=width)
    y1 = b[:, 3].clamp(max=height)
    return torch.stack([x0, y0, x1, y1], dim=1)


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS where overlap is intersection over the smaller box (MTCNN's last step), per group.

    Returns the kept indices, most probable first within each group. Called on O-Net survivors only
    (a handful per frame), so a small overlap matrix per frame and a short loop are cheap.
    """
    kept = []
    boxes = boxes.double().cpu()
    scores, groups = scores.cpu(), groups.cpu()
    for group in torch.unique(groups).tolist():
        members = torch.nonzero(groups == group).squeeze(1)
        order = members[torch.argsort(scores[members], descending=True, stable=True)]
        b = boxes[order]
        area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
        iw = torch.minimum(b[:, None, 2], b[None, :, 2]) - torch.maximum(b[:, None, 0], b[None, :, 0]) + 1
        ih = torch.minimum(b[:, None, 3], b[None, :, 3]) - torch.maximum(b[:, None, 1], b[None, :, 1]) + 1
        overlap = iw.clamp(min=0) * ih.clamp(min=0) / torch.minimum(area[:, None], area[None, :])
        suppress = (overlap > threshold).numpy()
        keep = np.ones(len(order), dtype=bool)
        for i in range(len(order)):
            if keep[i]:
                keep[i + 1 :] &= ~suppress[i, i + 1 :]
        kept.append(order[torch.from_numpy(np.flatnonzero(keep))])
    if not kept:
        return torch.empty(0, dtype=torch.long, device=groups.device)
    return torch.cat(kept)
