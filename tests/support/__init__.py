"""Test support: real servers (Prometheus, a loopback kube-apiserver), fixtures and CLI helpers; no tests here."""
