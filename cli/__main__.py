"""`python -m cli`: the same as the `alps` script."""

from cli.main import main

main()
