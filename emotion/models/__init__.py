"""The residual MLP and the LightningModule that trains it."""
