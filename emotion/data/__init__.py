"""Data loading: the LightningDataModule over a landmark store, its typed settings, subject
splits and batches."""
