"""Knowledge retrieval with citations: ingestion, structure-aware chunking, hybrid sparse search."""
