"""Built-in plugins: each module registers one family (or the data sets) through the
same hooks a third-party package uses. They must not import torch."""
