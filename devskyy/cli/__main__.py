"""``python -m devskyy.cli``: the same entry point as the ``devskyy`` script."""

from devskyy.cli import main

if __name__ == "__main__":
    main(prog_name="devskyy")
