"""``python -m zoo``: the CLI, so that ``torchrun -m zoo train ...`` starts zoo in every process."""

from zoo.cli import main

if __name__ == "__main__":
    main()
