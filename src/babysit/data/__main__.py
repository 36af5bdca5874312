"""``python -m babysit.data {wine|breast_cancer} OUT.csv``: write one of scikit-learn's tables as the CSV file
babysit reads (a header row, the features, the class index in a column named ``label``)."""

from __future__ import annotations

import sys

from babysit.data.tabular import TABLES, write_csv


def main(argv: list[str]) -> int:
    """Write the table ``argv[0]`` to ``argv[1]``; 2 on a wrong command line."""
    if len(argv) != 2 or argv[0] not in TABLES:
        print(f"usage: python -m babysit.data {{{'|'.join(TABLES)}}} OUT.csv", file=sys.stderr)
        return 2
    print(write_csv(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
