"""`python -m emotion.summary`: the same as `emotion-summary`."""

from emotion.summary.app import main

main()
