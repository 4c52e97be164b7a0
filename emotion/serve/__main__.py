"""`python -m emotion.serve`: the same as `emotion-serve`."""

import sys

from emotion.serve.app import main

main(sys.argv[1:])
