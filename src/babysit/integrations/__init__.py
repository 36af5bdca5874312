"""Adapters that attach babysit's Monitor to other training frameworks (thin files over the Monitor).

``babysit.integrations.lightning.BabysitCallback`` needs the optional ``lightning`` package
(``pip install babysit[lightning]``); importing this package does not import it.
"""
