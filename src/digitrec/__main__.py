"""`python -m digitrec`: the same as the `digitrec` command."""

from digitrec.cli import main

main()
