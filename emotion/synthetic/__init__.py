"""The SYNTHETIC default data: FaceMesh-like landmarks of invented people, a producer of
stores beside extraction (`emotion-synth`, or generated on first use by `make train`)."""
