"""Export a trained run for other runtimes: ONNX (:mod:`.onnx`, needs torch + onnx) and the
onnxruntime-only scorer that reads it back (:mod:`.runtime`, no torch)."""
