"""Training: `emotion-train`, its run directories (resume, the overwrite guard, the lock) and
the callbacks viewers see in TensorBoard."""
