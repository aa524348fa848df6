"""Deterministic Kubernetes-looking names: ReplicaSet hashes, pod suffixes, GPU UUIDs, nodes.

Everything is drawn from the caller's NumPy generator (never ``hash()`` or the clock), so a
seed gives the same names every run, and collisions are redrawn rather than allowed.
"""

from __future__ import annotations

import numpy as np

# k8s.io/apimachinery/pkg/util/rand: the alphabet without vowels and look-alike characters
# that ReplicaSet pod-template hashes and generateName suffixes use.
SAFE_ALPHABET = np.array(list("bcdfghjklmnpqrstvwxz2456789"))
HEX = np.array(list("0123456789abcdef"))


class Namer:
    """Draws unique names from one generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set()

    def _draw(self, alphabet: np.ndarray, n: int) -> str:
        return "".join(alphabet[self.rng.integers(0, len(alphabet), n)])

    def unique(self, make) -> str:
        """Call ``make()`` until it returns a name not handed out before."""
        for _ in range(1000):
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError(f"could not draw a unique name (last tried {name!r})")

    def suffixed(self, prefix: str, length: int) -> str:
        """``<prefix>-<length safe chars>``: ReplicaSets (10) and pods (5)."""
        return self.unique(lambda: f"{prefix}-{self._draw(SAFE_ALPHABET, length)}")

    def base(self, candidates: list[str]) -> str:
        """A workload or namespace name from a list; later picks of a used name get ``-2``, ``-3``."""
        choice = candidates[int(self.rng.integers(0, len(candidates)))]
        if choice not in self.used:
            self.used.add(choice)
            return choice
        k = 2
        while f"{choice}-{k}" in self.used:
            k += 1
        self.used.add(f"{choice}-{k}")
        return f"{choice}-{k}"

    def gpu_uuid(self) -> str:
        """``GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`` as nvidia-smi and DCGM print it."""
        return self.unique(lambda: "GPU-" + "-".join(self._draw(HEX, k) for k in (8, 4, 4, 4, 12)))

    def node(self, provider: str, cluster: str, pool: str) -> str:
        """A node name in the provider's style (EC2 private DNS, GKE instance, AKS VMSS)."""
        if provider == "aws":
            def make() -> str:
                a, b, c = (int(x) for x in self.rng.integers([16, 0, 1], [64, 256, 255]))
                return f"ip-10-{a}-{b}-{c}.ec2.internal"
        elif provider == "gcp":
            def make() -> str:
                return f"gke-{cluster}-{pool}-{self._draw(HEX, 8)}-{self._draw(SAFE_ALPHABET, 4)}"
        else:
            def make() -> str:
                digits = "".join(str(d) for d in self.rng.integers(0, 10, 8))
                return f"aks-{pool}-{digits}-vmss{np.base_repr(int(self.rng.integers(0, 36**3)), 36).lower():0>6}"
        return self.unique(make)


# Word lists for workload names, by role.
WEB = ["storefront", "checkout-api", "cart", "search-api", "recommendations", "auth", "profile", "api-gateway",
       "notifications", "pricing", "inventory", "orders", "reviews", "media-resizer", "graphql", "catalog-api",
       "payments-api", "shipping", "loyalty", "web-frontend", "admin-ui", "feature-flags", "sessions", "geo-api"]
BATCH = ["nightly-etl", "report-export", "invoice-run", "db-backup", "search-reindex", "feature-builder",
         "churn-scoring", "log-compaction", "usage-rollup", "email-digest", "sitemap-gen", "ledger-reconcile"]
JOBS = ["backfill-orders", "migrate-schema", "reprocess-images", "rebuild-index", "export-archive"]
STATEFUL = ["postgres", "redis", "kafka", "elasticsearch", "rabbitmq", "zookeeper", "mongodb", "clickhouse",
            "etcd", "cassandra", "memcached", "nats"]
LEAKY = ["session-cache", "pdf-renderer", "image-proxy", "legacy-soap-bridge", "ws-gateway", "ruby-worker"]
OOM = ["csv-importer", "thumbnailer", "json-transformer", "report-builder", "xml-parser", "bulk-uploader"]
IDLE = ["legacy-billing", "old-dashboard", "poc-chatbot", "demo-shop", "hackathon-api", "temp-migrator",
        "unused-exporter", "staging-mirror"]
OVER = ["user-service", "audit-log", "config-service", "tax-calculator", "coupon-service", "ab-testing",
        "content-api", "metadata-svc", "queue-consumer", "webhook-relay"]
UNDER = ["rate-limiter", "event-router", "stream-enricher", "fraud-check", "bid-engine", "pubsub-bridge"]
BEST_EFFORT = ["debug-toolbox", "scratch-runner", "netshoot", "curl-probe"]
TRAINING = ["train-llm-finetune", "train-resnet50", "train-bert-large", "train-recsys", "train-whisper",
            "train-vit", "train-ranker"]
INFERENCE = ["triton-embeddings", "llm-serving", "ocr-inference", "asr-inference", "image-tagger",
             "reranker-serving"]
NOTEBOOK = ["jupyter-alice", "jupyter-bob", "gpu-notebook", "sandbox-gpu"]
MIG = ["embeddings-small", "classifier-mig", "tokenizer-gpu", "ner-mig"]

WEB_NAMESPACES = ["storefront", "checkout", "payments", "search", "identity", "catalog", "notifications",
                  "growth", "logistics", "support", "marketing", "partners", "mobile-bff", "fraud", "ads",
                  "pricing", "reviews", "media", "loyalty", "accounts", "orders", "geo", "content", "core"]
