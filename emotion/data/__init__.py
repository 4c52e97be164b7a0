"""Landmark data: the HDF5 store, the synthetic default, normalisation, splits, the DataModule."""
