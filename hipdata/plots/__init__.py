"""Plotting functions: seaborn-style, keyword-only, data= and ax=, returning the Axes."""
