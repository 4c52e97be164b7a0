"""`python -m emotion.export`: the same as `emotion-export`."""

import sys

from emotion.export.app import main

main(sys.argv[1:])
