"""Talking to Slurm: submission, queries, backends and Slurm's own small
languages."""
