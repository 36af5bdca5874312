"""babysit: the CS231n learning process as software."""
