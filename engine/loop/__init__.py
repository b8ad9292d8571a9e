"""The closed loop: dispatch, retests, the task lifecycle, progress."""
