"""Training recipes beyond the reference: pre-training, fine-tuning, calibration, balancing."""
