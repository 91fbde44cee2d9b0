"""The people who work deskgate: console accounts, their two factors, their sessions, what they may do."""
