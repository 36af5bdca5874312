"""Adapters that attach babysit's Monitor to other training frameworks (thin files over the Monitor).

- ``babysit.integrations.lightning.BabysitCallback``: PyTorch Lightning (``pip install babysit[lightning]``).
- ``babysit.integrations.transformers.BabysitTrainerCallback``: Hugging Face ``transformers.Trainer``
  (``pip install babysit[transformers]``).

Importing this package imports neither framework; each module raises an ImportError naming the install
command when its framework is missing.
"""
