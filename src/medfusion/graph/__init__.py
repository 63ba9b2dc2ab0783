"""Medical knowledge graph: typed entities, sourced triples, importers and queries (first slice)."""
