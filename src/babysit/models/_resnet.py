"""A small ResNet for 32x32 images: batch norm and skip connections, the two things that let deep nets train.

The stem is one 3x3 conv; then ``stages`` stages of ``depth`` basic blocks each, the first stage at the input
size and every later one halving the size and doubling the channels (``width``, ``2*width``, ...); then global
average pooling and one linear layer. A basic block is ``conv-bn-relu-conv-bn`` plus the shortcut, then relu;
the shortcut is the identity, or a 1x1 conv (+ bn) where the shape changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from babysit.errors import ModelError
from babysit.models._mlp import activation


def _norm(channels: int, norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm else nn.Identity()


class BasicBlock(nn.Module):
    """``act(bn(conv(act(bn(conv(x))))) + shortcut(x))``; with ``skip=False`` the shortcut is dropped."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, norm: bool, skip: bool, act: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=not norm)
        self.bn1 = _norm(out_ch, norm)
        self.act1 = activation(act)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=not norm)
        self.bn2 = _norm(out_ch, norm)
        self.skip = skip
        self.shortcut: nn.Module = nn.Identity()
        if skip and (stride != 1 or in_ch != out_ch):
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=not norm),
                                          _norm(out_ch, norm))
        self.act2 = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))  # (N, out_ch, H/stride, W/stride)
        if self.skip:
            out = out + self.shortcut(x)
        return self.act2(out)


class ResNet(nn.Module):
    """``stem -> stages x depth BasicBlocks -> global average pool -> (dropout) -> Linear``.

    Args:
        input_shape: ``(channels, height, width)``, e.g. ``(3, 32, 32)``.
        num_classes: number of scores.
        width: channels of the stem and the first stage (doubled at every later stage).
        depth: basic blocks per stage.
        stages: number of stages; each after the first halves height and width.
        norm: batch norm after every conv (False: none, convs get biases).
        skip: skip connections (False: a plain deep conv net of the same shape).
        activation_name: ``relu`` (default), ``leaky_relu``, ``tanh`` or ``sigmoid``.
        dropout: dropout before the final linear layer.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, width: int = 16, depth: int = 1,
                 stages: int = 3, norm: bool = True, skip: bool = True, activation_name: str = "relu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ModelError(f"resnet needs images shaped (channels, height, width), got input_shape="
                             f"{tuple(input_shape)}. Use model kind 'mlp' for flat features.")
        for key, value in (("width", width), ("depth", depth), ("stages", stages)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"resnet setting {key} must be an integer >= 1, got {key}={value!r}.")
        in_ch, height, wide = (int(s) for s in input_shape)
        if min(height, wide) < 2 ** (stages - 1):
            raise ModelError(f"{stages} resnet stages halve {height}x{wide} images below 1 pixel; use at most "
                             f"{min(height, wide).bit_length()} stages.")
        self.stem = nn.Conv2d(in_ch, width, 3, padding=1, bias=not norm)
        self.stem_bn = _norm(width, norm)
        self.stem_act = activation(activation_name)
        blocks: list[nn.Module] = []
        channels = width
        for stage in range(stages):
            out_ch = width * 2**stage
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, out_ch, stride, norm=norm, skip=skip, act=activation_name))
                channels = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem_act(self.stem_bn(self.stem(x)))  # (N, width, H, W)
        x = self.blocks(x)  # (N, width * 2**(stages-1), H', W')
        return self.fc(self.drop(self.pool(x).flatten(1)))  # (N, num_classes)
