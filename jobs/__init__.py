"""Spark entry points and the data platform: session, Delta lake, contracts, jobs, CLI."""
