"""Real image folders for the tests: scikit-learn's digit scans written as class folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def digits_folder(root: Path, count: int = 200, size: int = 16) -> Path:
    """``count`` real digit scans as ``size`` px class folders, PNG and JPEG alternating."""
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:count], digits.target[:count], strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = Image.fromarray((image * 15).astype(np.uint8)).resize((size, size))
        pixels.save(root / str(label) / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root
