"""The day's positives and reports, and the outbreak analysis over the graph."""
