"""Demand forecasting and drift detection (scikit-learn estimator contract)."""
