"""Analyses on the contract tables: models, curves and cohort tables."""
