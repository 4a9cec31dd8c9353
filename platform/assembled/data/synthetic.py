"""A deterministic synthetic image-classification dataset, rendered on the CPU in batches.

Why: no machine here reaches the internet, yet every table needs data where architecture and
regularisation matter. A class is a (shape, texture, colour) triple; every image adds nuisance
(position, scale, rotation, aspect, colour jitter, a cluttered background of distractor
blobs, pixel noise), so a small CNN climbs well above chance within a CPU minute but does not
saturate after one epoch. Image i of a split depends only on (seed, split, i): the same on
every machine.
"""

from __future__ import annotations

import math

import torch

from .in_memory import InMemoryImages

SHAPES = ("disc", "square", "triangle", "ring", "cross", "diamond", "bar", "half_disc")
TEXTURES = ("solid", "stripes", "checker", "dots")
PALETTE = torch.tensor(
    [
        [0.90, 0.20, 0.20],
        [0.20, 0.75, 0.25],
        [0.20, 0.35, 0.90],
        [0.95, 0.85, 0.20],
        [0.80, 0.30, 0.85],
        [0.20, 0.85, 0.85],
        [0.95, 0.55, 0.15],
        [0.55, 0.55, 0.55],
    ]
)
SPLIT_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_029}
CHUNK = 256


# fine-grained classes share the first shapes (disc, square); texture and colour tell them apart
FINE_GRAINED_SHAPES = 2


def class_attributes(num_classes: int, seed: int = 0, fine_grained: bool = False) -> torch.Tensor:
    """(shape, texture, colour) index triples, distinct per class, fixed by the seed.
    ``fine_grained``: every class is a disc or a square, so classes differ in detail only."""
    shapes = FINE_GRAINED_SHAPES if fine_grained else len(SHAPES)
    total = shapes * len(TEXTURES) * len(PALETTE)
    if num_classes > total:
        kind = "fine-grained synthetic" if fine_grained else "synthetic"
        raise ValueError(f"{kind} data supports at most {total} classes, asked for {num_classes}")
    g = torch.Generator().manual_seed(seed)
    # stride through combinations so that early classes differ in every attribute
    perm = torch.randperm(total, generator=g)[:num_classes]
    shape = perm % shapes
    texture = (perm // shapes) % len(TEXTURES)
    colour = perm // (shapes * len(TEXTURES))
    return torch.stack([shape, texture, colour], 1)


def _shape_mask(kind: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r = torch.sqrt(u * u + v * v)
    masks = torch.stack(
        [
            r < 1.0,
            (u.abs() < 0.8) & (v.abs() < 0.8),
            (v > -0.7) & (v < 1.7 * u + 0.9) & (v < -1.7 * u + 0.9),
            (r < 1.0) & (r > 0.55),
            ((u.abs() < 0.3) & (v.abs() < 0.95)) | ((v.abs() < 0.3) & (u.abs() < 0.95)),
            (u.abs() + v.abs()) < 1.0,
            (u.abs() < 1.0) & (v.abs() < 0.35),
            (r < 1.0) & (v > 0),
        ],
        1,
    )  # N x S x H x W
    return masks.gather(1, kind.view(-1, 1, 1, 1).expand(-1, 1, *u.shape[-2:])).squeeze(1)


def _texture(kind: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    f = 3.5
    tex = torch.stack(
        [
            torch.ones_like(u),
            (torch.sin(f * math.pi * u) > 0).float(),
            ((torch.sin(f * math.pi * u) * torch.sin(f * math.pi * v)) > 0).float(),
            ((torch.cos(f * math.pi * u) * torch.cos(f * math.pi * v)) > 0.35).float(),
        ],
        1,
    )
    return tex.gather(1, kind.view(-1, 1, 1, 1).expand(-1, 1, *u.shape[-2:])).squeeze(1)


def render(labels: torch.Tensor, attrs: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Render one image per label: uint8 N x 3 x size x size."""
    n = labels.shape[0]
    lin = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(lin, lin, indexing="ij")
    x, y = x.expand(n, size, size), y.expand(n, size, size)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    # background: smooth two-colour gradient plus distractor blobs
    c0, c1 = rnd(n, 3, 1, 1), rnd(n, 3, 1, 1)
    angle = rnd(n, 1, 1) * 2 * math.pi
    t = ((x * torch.cos(angle) + y * torch.sin(angle)) * 0.5 + 0.5).unsqueeze(1)
    img = c0 * (1 - t) + c1 * t
    for _ in range(3):
        bc, br = rnd(n, 2, 1, 1) * 2 - 1, rnd(n, 1, 1) * 0.25 + 0.08
        blob = (((x - bc[:, 0]) ** 2 + (y - bc[:, 1]) ** 2) < br**2).unsqueeze(1).float()
        img = img * (1 - blob) + rnd(n, 3, 1, 1) * blob
    # a small distractor object with random attributes, then the object itself
    for attributes, size_range in ((_random_attrs(n, g), (0.12, 0.22)), (attrs[labels], (0.35, 0.65))):
        img = _draw(img, attributes, size_range, x, y, g)
    img = img + torch.randn(img.shape, generator=g) * 0.08
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def _random_attrs(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.stack(
        [
            torch.randint(len(SHAPES), (n,), generator=g),
            torch.randint(len(TEXTURES), (n,), generator=g),
            torch.randint(len(PALETTE), (n,), generator=g),
        ],
        1,
    )


def _draw(
    img: torch.Tensor,
    attributes: torch.Tensor,
    size_range: tuple[float, float],
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Generator,
) -> torch.Tensor:
    n = img.shape[0]

    def rnd(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    shape, texture, colour = attributes.unbind(1)
    lo, hi = size_range
    scale = (rnd(n, 1, 1, 1) * (hi - lo) + lo) * torch.stack([torch.ones(n), rnd(n) * 0.4 + 0.8], 1).view(n, 2, 1, 1)
    centre = (rnd(n, 2, 1, 1) * 2 - 1) * (0.85 - scale.view(n, 2, 1, 1))
    theta = rnd(n, 1, 1) * 2 * math.pi
    dx, dy = x - centre[:, 0], y - centre[:, 1]
    u = (dx * torch.cos(theta) + dy * torch.sin(theta)) / scale[:, 0]
    v = (-dx * torch.sin(theta) + dy * torch.cos(theta)) / scale[:, 1]
    mask = _shape_mask(shape, u, v).unsqueeze(1).float()
    tex = _texture(texture, u, v).unsqueeze(1)
    base = (PALETTE[colour] + (rnd(n, 3) - 0.5) * 0.3).clamp(0, 1).view(n, 3, 1, 1)
    obj = base * (0.45 + 0.55 * tex)
    return img * (1 - mask) + obj * mask


class SyntheticShapes(InMemoryImages):
    """``length`` images of ``image_size`` pixels over ``num_classes`` classes, rendered once.

    Returns ``(image, label, index)``; ``image`` is the uint8 tensor passed through
    ``transform`` (if any). Labels are balanced (i % num_classes, shuffled by the seed).
    """

    def __init__(
        self,
        num_classes: int = 10,
        length: int = 5000,
        image_size: int = 64,
        split: str = "train",
        seed: int = 0,
        transform=None,
        fine_grained: bool = False,
        zero_shot: bool = False,
    ) -> None:
        if split not in SPLIT_OFFSET:
            raise ValueError(f"split must be one of {list(SPLIT_OFFSET)}, got {split!r}")
        attrs = class_attributes(num_classes, seed, fine_grained)
        names = [f"class_{i:03d}" for i in range(num_classes)]
        if zero_shot:  # train on the first half of the classes; the second half is query and gallery
            half = num_classes // 2
            keep = slice(0, half) if split == "train" else slice(half, num_classes)
            attrs, names = attrs[keep], names[keep]
            num_classes = len(names)
        self.num_classes = num_classes
        self.classes = names
        self.transform = transform
        g = torch.Generator().manual_seed(seed * 7919 + SPLIT_OFFSET[split])
        self.targets = (torch.arange(length) % num_classes)[torch.randperm(length, generator=g)]
        chunks = []
        for start in range(0, length, CHUNK):
            cg = torch.Generator().manual_seed(seed * 7919 + SPLIT_OFFSET[split] + 1 + start)
            chunks.append(render(self.targets[start : start + CHUNK], attrs, image_size, cg))
        self.images = torch.cat(chunks) if chunks else torch.empty(0, 3, image_size, image_size, dtype=torch.uint8)
