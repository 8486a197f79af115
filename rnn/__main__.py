"""python -m rnn: the command line, rnn.cli.commands."""

import sys

from rnn.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
