"""A trained model (or an ensemble of them) rebuilt from checkpoints alone, ready to turn raw
landmarks into probabilities: what evaluation, prediction and export start from."""
