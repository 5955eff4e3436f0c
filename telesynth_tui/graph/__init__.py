"""Knowledge graph: SQLite store, importers, graph views and retrieval."""
