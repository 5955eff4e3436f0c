"""Local model back ends: GGUF generators (llama.cpp), ONNX encoders, metering."""
