"""Alert rules and dashboard checks against real promtool and Prometheus."""
