"""Reaching people: the population directory and the late re-routing of tasks."""
