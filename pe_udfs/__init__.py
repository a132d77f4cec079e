"""Per-video computation with no Spark dependency: decode, product map, engagement map, PE math.

    errors    the project's one error root (PEError) and the per-video input errors
    uris      the one URI policy (schemes, roots) and opening a path or URI
    video     decode and sample a video (1 fps, first 60 s)
    product   the product map (SIFT + RANSAC, or the paper's ORB hull)
    saliency  the engagement map (Captum gradients, SmoothGrad, spectral residual); resolve_device
    pe_math   the PE scores from the two maps (and from stored per-second sums)
    score     one video end to end; udf: the pandas-UDF adapter the Spark jobs call
"""
