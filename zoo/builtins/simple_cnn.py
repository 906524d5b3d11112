"""Built-in plugin: simple_cnn (filled in by its family)."""
