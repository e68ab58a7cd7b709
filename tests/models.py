"""Small models shared by the tests (and loaded by path by the command-line tests)."""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Tokens(nn.Module):
    """Token ids and a float tensor: two arguments of forward, of two dtypes."""

    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.Embedding(50, 8), nn.Linear(8, 4)

    def forward(self, ids, offset):
        return self.head(self.embed(ids) + offset)


class Switched(nn.Module):
    """A forward taking options beside its input: a string choosing the layer, a scale, a cache it writes in, a
    head it is handed."""

    def __init__(self):
        super().__init__()
        self.small, self.large = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 5, padding=1)

    def forward(self, x, mode="small", scale=1.0, cache=None, head=None):
        y = (self.small if mode == "small" else self.large)(x) * scale
        if cache is not None:
            cache["calls"] = cache.get("calls", 0) + 1
        return y if head is None else head(y)


class Conv2dSame(nn.Conv2d):
    """The pad-then-convolve subclass of TensorFlow ports (timm's Conv2dSame): asymmetric zero padding."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        pads = []
        for size, k, s, d in zip((iw, ih), self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class SkipUp(nn.Module):
    """A U-Net step: down by a strided convolution, back up to the input's own size (``output_size=``, so
    output_padding follows the size's parity), concatenated with the input."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1)
        self.out = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        return self.out(torch.cat([x, self.up(self.down(x), output_size=x.shape[-2:])], 1))
