"""The trace of a positive tube: its JSON and its graph exports."""
