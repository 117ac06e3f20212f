"""Stage 4: crops -> scores. MobileNetV2 -> global average pooling -> fully connected head -> one logit.

P(fake) = sigmoid(logit). Inputs are 224x224 RGB crops with ImageNet normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models import mobilenet_v2

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DeepfakeClassifier(nn.Module):
    """MobileNetV2 features, global average pooling and a small fully connected head with one output.

    Parameters
    ----------
    hidden : width of the hidden fully connected layer (default 256).
    dropout : dropout before each fully connected layer (default 0.3).
    """

    def __init__(self, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.features = mobilenet_v2(weights=None).features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(1280, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )
        self.config = {"hidden": hidden, "dropout": dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N,): positive means FAKE."""
        return self.head(self.pool(self.features(x))).squeeze(1)


def load_backbone_weights(model: DeepfakeClassifier, source: str | Path) -> None:
    """Initialise ``model.features`` from ImageNet MobileNetV2 weights.

    ``source`` is ``"imagenet"`` (torchvision's own IMAGENET1K_V2 weights, downloaded on first use) or
    the path of a torchvision ``mobilenet_v2`` state dict, such as ``../shared/weights/mobilenet_v2_imagenet.pth``.
    """
    if str(source) == "imagenet":
        from torchvision.models import MobileNet_V2_Weights

        state = MobileNet_V2_Weights.IMAGENET1K_V2.get_state_dict(progress=True)
    else:
        state = torch.load(Path(source), map_location="cpu", weights_only=True)
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    model.features.load_state_dict(features, strict=True)


def preprocess_crops(crops: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """(N, 224, 224, 3) uint8 RGB crops -> normalised float tensor (N, 3, 224, 224)."""
    array = np.ascontiguousarray(np.stack(list(crops)) if isinstance(crops, list) else crops)
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (tensor - mean) / std
