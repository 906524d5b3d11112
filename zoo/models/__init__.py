"""The built-in architecture families, one module each, over shared blocks (``zoo.models.blocks``).

Importing this package does not import torch; the registry resolves builders such as
``"zoo.models.resnet:resnet18"`` only when a model is built. Each builder has the signature
``builder(num_classes=1000, in_channels=3, **options) -> nn.Module`` and returns a
``blocks.ConvNet`` (``features``, ``pool``, ``flatten``, ``classifier``).
"""
