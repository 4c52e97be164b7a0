"""Live serving: an HTTP API and a webcam page over the trained model (`emotion-serve`)."""
