"""Built-in plugin: se (filled in by its family)."""
