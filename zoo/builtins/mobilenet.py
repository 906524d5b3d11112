"""Built-in plugin: mobilenet (filled in by its family)."""
