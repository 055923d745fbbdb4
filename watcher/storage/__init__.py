"""Storage: the schema, numbered migrations and the store's queries."""
