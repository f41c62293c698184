"""Messages the agent sends on its own: reminders people ask for, and optional check-ins."""
