"""The edge side: prediction with onnxruntime, numpy and Pillow only. Never imports torch."""
