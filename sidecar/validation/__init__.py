"""Output validators (JSON and JSON Schema), with schemas compiled once."""
