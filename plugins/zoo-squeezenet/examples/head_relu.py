"""Why ``head_relu`` defaults to False: train SqueezeNet 1.1 from scratch on small images
with and without the published head ReLU and print test accuracy (one thread, so the figures
repeat exactly; about a minute on an idle core).

    python plugins/zoo-squeezenet/examples/head_relu.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from zoo_squeezenet.models import squeezenet1_1


def main(epochs: int = 12, size: int = 32) -> None:
    torch.set_num_threads(1)
    digits = load_digits()  # 1,797 real 8x8 scans, shipped with scikit-learn
    x = F.interpolate(torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0, size=size,
                      mode="bilinear")
    y = torch.tensor(digits.target)
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]
    for head_relu in (True, False):
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            model = squeezenet1_1(num_classes=10, in_channels=1, head_relu=head_relu)
            optimiser = torch.optim.Adam(model.parameters(), 1e-3)
            for _ in range(epochs):
                model.train()
                for batch in torch.randperm(len(x_train)).split(64):
                    loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            print(f"head_relu={head_relu} seed={seed} last loss {loss.item():.3f} "
                  f"test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
