"""Features: how raw FaceMesh landmarks become the model's input (geometry, alignment,
augmentation), in numpy for training and in torch for exported graphs."""
