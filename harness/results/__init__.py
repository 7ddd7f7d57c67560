"""Stored runs and what is made of them: tidy frames, recommendations, plots, reports."""
