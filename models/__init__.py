"""The engagement network: backbone registry, 3-D head, training, evaluation, MLflow registry helpers.

    backbones  frozen 2-D feature extractors by name;  network  the 3-D head (EngagementNet)
    training   the training loop;  labels  the label and the influencer split;  evaluate, gate, agreement
    registry   MLflow I/O (log, load, cache);  promotion  the promotion policy (@champion)
Errors derive from :class:`pe_udfs.errors.PEError`; nothing here imports ``jobs``.
"""
