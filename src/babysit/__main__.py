"""``python -m babysit``: the ``babysit`` command, for an environment whose scripts folder is not on PATH."""

from babysit._launch import main

main()
