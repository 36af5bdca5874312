"""Models the lecture trains: a linear classifier, an MLP, a small CNN, a ResNet, a transformer language model,
or your own factory.

Example:
    >>> import babysit
    >>> model = babysit.models.build("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=[64])
    >>> model(__import__("torch").zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from babysit.models._build import KINDS, SEQUENCE_KINDS, build, build_resnet, build_transformer
from babysit.models._cnn import SmallCNN
from babysit.models._init import initialize
from babysit.models._mlp import MLP, LinearClassifier
from babysit.models._resnet import ResNet
from babysit.models._transformer import TransformerLM

__all__ = [
    "KINDS",
    "MLP",
    "SEQUENCE_KINDS",
    "LinearClassifier",
    "ResNet",
    "SmallCNN",
    "TransformerLM",
    "build",
    "build_resnet",
    "build_transformer",
    "initialize",
]
