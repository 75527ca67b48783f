"""One construct per concern of the Taskbeat stack."""
