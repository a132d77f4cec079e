"""The engagement network: backbone registry, 3-D head, training, evaluation, the MLflow model registry.

    backbones  frozen 2-D feature extractors by name;  network  the 3-D head (EngagementNet)
    training   the training loop;  labels  the label and the influencer split;  evaluate, gate, agreement
    registry   ModelRegistry: versions, champion, load, register, promote (one object per store and name)
    stored_model  the saved files and how a model is rebuilt;  promotion  the policy (@champion) and its tags
    logged_evaluation  what a training run logs and how it is read back;  tracking  MLflow runs
Errors derive from :class:`pe_udfs.errors.PEError`; nothing here imports ``jobs``.
"""
