"""Export: a trained model (or an ensemble) as one ONNX graph that takes raw FaceMesh
landmarks and normalises them itself, checked against onnxruntime before it is kept."""
