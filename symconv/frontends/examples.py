"""Example models for profiling, tests and benchmarks (needs torch).

    symconv profile symconv.frontends.examples:dcgan_generator --input 1,100,1,1
"""

from __future__ import annotations

import torch
from torch import nn


def dcgan_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Sequential:
    """The DCGAN generator: five ConvTranspose2d layers from a (nz, 1, 1) code to a 64×64 image."""
    def up(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
    return nn.Sequential(
        *up(nz, ngf * 8, 1, 0), *up(ngf * 8, ngf * 4, 2, 1), *up(ngf * 4, ngf * 2, 2, 1), *up(ngf * 2, ngf, 2, 1),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


class UNetDecoder(nn.Module):
    """A U-Net-style decoder: upsample by transposed convolutions, refine by convolutions.

    It exercises odd corners on purpose: output_padding, padding="same" with an even
    kernel, reflect and replicate padding, a depthwise convolution and a Linear head.
    """

    def __init__(self, channels: int = 64, classes: int = 4) -> None:
        super().__init__()
        c = channels
        self.up1 = nn.ConvTranspose2d(c, c // 2, 2, stride=2)
        self.conv1 = nn.Conv2d(c // 2, c // 2, 3, padding=1, padding_mode="reflect")
        self.up2 = nn.ConvTranspose2d(c // 2, c // 4, 3, stride=2, padding=1, output_padding=1)
        self.conv2 = nn.Conv2d(c // 4, c // 4, 4, padding="same")
        self.depthwise = nn.Conv2d(c // 4, c // 4, 3, padding=1, groups=c // 4, padding_mode="replicate")
        self.act = nn.ReLU()
        self.head = nn.Linear(c // 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv1(self.up1(x)))
        x = self.act(self.depthwise(self.conv2(self.up2(x))))
        return self.head(x.permute(0, 2, 3, 1))


def unet_decoder(channels: int = 64, classes: int = 4) -> UNetDecoder:
    return UNetDecoder(channels, classes)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block: 1×1 reduce, 3×3 (strided), 1×1 expand, plus the shortcut."""

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * 4
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet50(nn.Module):
    """A ResNet-50 (the torchvision layout, written here: torchvision does not load beside the CPU torch)."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        stages, c = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck(c, width, stride if b == 0 else 1))
                c = width * 4
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50(classes: int = 1000) -> ResNet50:
    return ResNet50(classes).eval()
