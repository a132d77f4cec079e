"""Per-video computation with no Spark dependency: decode, product map, engagement map, PE math."""
