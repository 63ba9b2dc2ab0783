"""口袋主任医师 — the pocket chief physician: differential diagnosis, checks, treatment and drug ideas."""
