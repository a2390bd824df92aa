"""`python -m truecost` runs the command-line program."""

from truecost.cli.main import main

main()
