"""Adapters that attach babysit's Monitor to other training frameworks (thin files over the Monitor).

- ``babysit.integrations.lightning.BabysitCallback``: PyTorch Lightning (``pip install babysit[lightning]``).
- ``babysit.integrations.transformers.BabysitTrainerCallback``: Hugging Face ``transformers.Trainer``
  (``pip install babysit[transformers]``).

And ``fit`` callbacks that send a babysat run to an experiment tracker (``pip install babysit[trackers]``):

- ``babysit.integrations.mlflow.MLflowLogger``: MLflow (a tracking server, a database or a local store).
- ``babysit.integrations.wandb.WandbLogger``: Weights & Biases (online or offline).

Importing this package imports no framework and no tracker; each framework module raises an ImportError
naming the install command when its framework is missing, each tracker callback a ConfigError when it is built.
"""
