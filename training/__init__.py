"""Training and measurement scripts for the models moodtunes ships (run from the repository root)."""
