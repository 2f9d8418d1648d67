"""gRPC server helpers: handler wrapping, the edge interceptor, health, reflection, stop."""
