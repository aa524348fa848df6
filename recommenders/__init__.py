"""Recommenders: right-sizing, GPU sharing and spot changes as reviewable YAML patches."""
