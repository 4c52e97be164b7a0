"""FaceMesh: photo and video bytes to 478 landmarks. Decoding, the FaceMesh graph and the
runner that extraction and prediction both call, with input and output types of its own."""
