"""Running a generator on real images: tiling, precision, colour fixes, ONNX Runtime."""
