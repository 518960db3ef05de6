"""``python -m sybilgnn``: the same command line as the ``sybilgnn`` entry point, for
environments where the script directory is not on PATH."""

from sybilgnn.cli import main

if __name__ == "__main__":
    main()
