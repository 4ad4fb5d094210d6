"""Plugins: packages loaded by name from the PLUGINS setting."""
