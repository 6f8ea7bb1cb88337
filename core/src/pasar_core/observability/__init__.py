"""What operators watch: Prometheus metrics, OpenTelemetry traces, structured logs."""

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client reads it when imported: a process that sets it must not have imported
prometheus-client yet (`pasar serve`'s parent never does)."""
