"""Chat models: the built-in providers and the scripted model for tests, demos and benchmarks."""
