"""SqueezeNet for zoo. The plugin module (``zoo_squeezenet.plugin``) is torch-free; the
networks live in ``zoo_squeezenet.models`` and are imported only when one is built."""

from __future__ import annotations

__version__ = "0.1.0"
