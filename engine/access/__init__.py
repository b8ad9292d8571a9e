"""Who may do what: API keys, console sessions, masking and scoping, the audit log."""
