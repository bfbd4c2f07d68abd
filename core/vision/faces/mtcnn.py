"""facenet-pytorch's MTCNN cascade for one image, with its work bounded.

This is ``facenet_pytorch.models.utils.detect_face.detect_face`` (MIT licence, Tim Esler) for a single
image, step for step, with two differences:

- **A bound on candidates.** After each of the first two stages only the ``max_candidates`` largest
  candidate boxes go on to the next (slower) network. facenet-pytorch crops and resizes every candidate
  one at a time in Python, so a photo of hundreds of faces (or a texture that looks like them) sends
  thousands of boxes through R-Net and O-Net: 12-25 s and 1.1 GB for a tile of 625 faces. Ordinary
  photos have 30-400 R-Net and 5-60 O-Net candidates, under the bounds, and get exactly the same faces.
  The largest are kept because only the largest faces of a photo are analysed.
- **No crash on thin images.** When the image is too small for one 12x12 window at the smallest face
  size, there are no scales and no faces (facenet-pytorch raises ValueError from ``torch.cat``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import (
    batched_nms,
    batched_nms_numpy,
    bbreg,
    fixed_batch_process,
    generateBoundingBox,
    imresample,
    pad,
    rerec,
)

MAX_CANDIDATES = (1000, 300)
"""Most candidate boxes sent to R-Net and to O-Net. Each costs about 0.4 ms (R-Net) and 1.2 ms
(O-Net) with its crop on one core; a 640 px copy has room for about 1,000 faces of the 20 px minimum."""


@dataclass(frozen=True)
class Detections:
    """MTCNN's output for one image.

    Attributes:
        boxes: (N, 5) float array ``x1, y1, x2, y2, probability``.
        points: (N, 5, 2) float array, the five landmarks.
        capped: True when a bound on candidates was reached, so there may be more faces than ``N``.
    """

    boxes: np.ndarray
    points: np.ndarray
    capped: bool


def _best(boxes: torch.Tensor, limit: int) -> tuple[torch.Tensor, bool]:
    """Indices of the ``limit`` boxes of highest score (all, in order, when there are not more)."""
    if len(boxes) <= limit:
        return torch.arange(len(boxes)), False
    return torch.sort(torch.topk(boxes[:, 4], limit).indices).values, True


def _inside(boxes: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """Which boxes overlap the image (facenet-pytorch skips the others' crops but not the boxes, which
    misaligns boxes and scores; here they are dropped together)."""
    y, ey, x, ex = pad(boxes, w, h)
    return torch.as_tensor((ey > y - 1) & (ex > x - 1))


def _crops(img: torch.Tensor, boxes: torch.Tensor, w: int, h: int, size: int) -> torch.Tensor:
    """Each box cut out (clipped to the image) and resized to ``size`` x ``size``, standardised."""
    y, ey, x, ex = pad(boxes, w, h)
    data = [
        imresample(img[:, :, (y[k] - 1) : ey[k], (x[k] - 1) : ex[k]], (size, size)) for k in range(len(y))
    ]
    return (torch.cat(data, dim=0) - 127.5) * 0.0078125


def detect(mtcnn: MTCNN, image: np.ndarray, max_candidates: tuple[int, int] = MAX_CANDIDATES) -> Detections:
    """Faces of an RGB uint8 (H, W, 3) image with ``mtcnn``'s networks, thresholds and pyramid.

    Returns them in MTCNN's order; ``capped`` says whether ``max_candidates`` cut the search short.
    """
    pnet, rnet, onet = mtcnn.pnet, mtcnn.rnet, mtcnn.onet
    threshold, factor, device = mtcnn.thresholds, mtcnn.factor, mtcnn.device
    none = Detections(np.zeros((0, 5)), np.zeros((0, 5, 2)), False)
    img = torch.as_tensor(image.copy(), device=device).unsqueeze(0)
    img = img.permute(0, 3, 1, 2).type(next(pnet.parameters()).dtype)
    h, w = img.shape[2:4]
    m = 12.0 / mtcnn.min_face_size
    minl = min(h, w) * m
    scales = []
    scale_i = m
    while minl >= 12:
        scales.append(scale_i)
        scale_i *= factor
        minl *= factor
    if not scales:  # too thin for one window: facenet-pytorch crashes on torch.cat([])
        return none

    # First stage: P-Net over the pyramid.
    all_boxes, all_inds, scale_picks = [], [], []
    offset = 0
    for scale in scales:
        im_data = imresample(img, (int(h * scale + 1), int(w * scale + 1)))
        im_data = (im_data - 127.5) * 0.0078125
        reg, probs = pnet(im_data)
        boxes_scale, image_inds_scale = generateBoundingBox(reg, probs[:, 1], scale, threshold[0])
        all_boxes.append(boxes_scale)
        all_inds.append(image_inds_scale)
        pick = batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], image_inds_scale, 0.5)
        scale_picks.append(pick + offset)
        offset += boxes_scale.shape[0]
    boxes = torch.cat(all_boxes, dim=0)
    image_inds = torch.cat(all_inds, dim=0)
    picks = torch.cat(scale_picks, dim=0)
    boxes, image_inds = boxes[picks], image_inds[picks]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    qq1 = boxes[:, 0] + boxes[:, 5] * regw
    qq2 = boxes[:, 1] + boxes[:, 6] * regh
    qq3 = boxes[:, 2] + boxes[:, 7] * regw
    qq4 = boxes[:, 3] + boxes[:, 8] * regh
    boxes = torch.stack([qq1, qq2, qq3, qq4, boxes[:, 4]]).permute(1, 0)
    boxes = rerec(boxes)
    keep, capped = _best(boxes, max_candidates[0])
    boxes, image_inds = boxes[keep], image_inds[keep]
    inside = _inside(boxes, w, h)
    boxes, image_inds = boxes[inside], image_inds[inside]

    # Second stage: R-Net on 24x24 crops.
    if len(boxes) > 0:
        out = fixed_batch_process(_crops(img, boxes, w, h, 24), rnet)
        out0 = out[0].permute(1, 0)
        score = out[1].permute(1, 0)[1, :]
        ipass = score > threshold[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds, mv = boxes[pick], image_inds[pick], mv[pick]
        boxes = bbreg(boxes, mv)
        boxes = rerec(boxes)
        keep, capped_here = _best(boxes, max_candidates[1])
        boxes, image_inds = boxes[keep], image_inds[keep]
        capped = capped or capped_here
        inside = _inside(boxes, w, h)
        boxes, image_inds = boxes[inside], image_inds[inside]

    # Third stage: O-Net on 48x48 crops, with landmarks.
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes) > 0:
        out = fixed_batch_process(_crops(img, boxes, w, h, 48), onet)
        out0 = out[0].permute(1, 0)
        out1 = out[1].permute(1, 0)
        score = out[2].permute(1, 0)[1, :]
        points = out1
        ipass = score > threshold[2]
        points = points[:, ipass]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        w_i = boxes[:, 2] - boxes[:, 0] + 1
        h_i = boxes[:, 3] - boxes[:, 1] + 1
        points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
        points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
        points = torch.stack((points_x, points_y)).permute(2, 1, 0)
        boxes = bbreg(boxes, mv)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
        boxes, points = boxes[pick], points[pick]
    return Detections(boxes.cpu().numpy(), points.cpu().numpy(), capped)
