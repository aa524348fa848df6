"""JSON Schemas of kubetune's machine-readable output (package data: envelope-v1.json)."""
