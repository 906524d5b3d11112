"""Built-in export backends (TorchScript, ONNX), registered through ``zoo_register_exporters``."""
