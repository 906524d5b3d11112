"""Built-in plugin: vgg (filled in by its family)."""
