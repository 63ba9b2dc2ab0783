"""Multi-disciplinary consultation (MDT): specialty agents in parallel, a confidence-weighted consensus,
the graph conflict check, and Markdown minutes — a draft until a clinician confirms it."""
