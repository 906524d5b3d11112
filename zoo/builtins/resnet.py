"""Built-in plugin: resnet (filled in by its family)."""
