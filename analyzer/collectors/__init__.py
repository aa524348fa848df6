"""Collectors: Prometheus, Kubernetes API and files, each producing Snapshot frames."""
