"""`python -m emotion.training`: the same as `emotion-train`."""

from emotion.training.app import main

main()
