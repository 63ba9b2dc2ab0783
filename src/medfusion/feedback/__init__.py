"""The evolution layer: clinicians accept, edit or reject assistive drafts; every act is stored and audited,
re-weights retrieval, and exports as preference (DPO) and supervised (SFT) training data."""
