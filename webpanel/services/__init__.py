"""Services: the only place with rules. Every way in calls these."""
