"""The Chinese web shell: server-rendered pages served by the API process (no Node build step)."""
