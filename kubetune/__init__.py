"""The `kubetune` console script and the pipeline wiring; thin by design."""

from kubetune.threads import cap_threads

cap_threads()  # before numpy/scikit-learn start their thread pools
