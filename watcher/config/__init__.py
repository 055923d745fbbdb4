"""The configuration: pydantic models, friendly values, YAML with a line per key."""
