"""Real models that the tests, docs and README use, sized for scikit-learn's digits (8×8, 10 classes).

Each model is written the way people write them, placement "mistakes" included: that is what
bnplace finds, rewrites and measures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """A plain MLP with no BatchNorm: Linear → ReLU → Dropout per hidden layer (placement `none`)."""

    def __init__(self, in_features: int = 64, hidden: tuple[int, ...] = (128, 64),
                 num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Lesson3Head(nn.Module):
    """The fast.ai Lesson 3 classifier head (``get_bn_layers``) in PyTorch: BN placed *after* Dropout.

    The Keras original was ``Dense(4096, activation='relu'), Dropout(p), BatchNormalization()`` twice,
    then ``Dense(1000, activation='softmax')``; widths are scaled down for the digits data.
    """

    def __init__(self, in_features: int = 64, hidden: int = 128, num_classes: int = 10,
                 p: float = 0.5) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu1 = nn.ReLU()
        self.drop1 = nn.Dropout(p)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.relu2 = nn.ReLU()
        self.drop2 = nn.Dropout(p)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.drop1(self.relu1(self.fc1(self.flatten(x)))))
        x = self.bn2(self.drop2(self.relu2(self.fc2(x))))
        return self.out(x)


class KerasQuestionMLP(nn.Module):
    """The Keras model from "Where do I call BatchNormalization in Keras?" in PyTorch.

    Dense → BN → tanh → Dropout twice (BN before the activation), with a bias before each BN.
    """

    def __init__(self, in_features: int = 64, hidden: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.Tanh(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.Tanh(), nn.Dropout(0.5),
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class FunctionalMLP(nn.Module):
    """Activations and dropout written functionally (``F.relu``, ``F.dropout(x, p, self.training)``)."""

    def __init__(self, in_features: int = 64, hidden: int = 96, num_classes: int = 10,
                 p: float = 0.25) -> None:
        super().__init__()
        self.p = p
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = F.dropout(F.relu(self.fc1(x)), self.p, self.training)
        x = F.dropout(self.fc2(x).relu(), self.p, self.training)
        return self.fc3(x)


class SmallCNN(nn.Module):
    """A VGG-style CNN for 1×8×8 digits: conv blocks (BN after the activation, as in Keras habit),
    then a VGG classifier head of Linear → ReLU → Dropout chains."""

    def __init__(self, channels: int = 16, hidden: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(channels),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.BatchNorm2d(channels),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.BatchNorm2d(2 * channels),
            nn.MaxPool2d(2),
        )
        self.classifier = VGGHead(2 * channels * 2 * 2, hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class VGGHead(nn.Module):
    """VGG's classifier: flatten, then (Linear → ReLU → Dropout) twice, then the output Linear."""

    def __init__(self, in_features: int = 64, hidden: int = 256, num_classes: int = 10,
                 p: float = 0.5) -> None:
        super().__init__()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden), nn.ReLU(True), nn.Dropout(p),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)
