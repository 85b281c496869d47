"""The Kubernetes side of the operator: manifest builders (pure), the observer
that reads a ModelDeployment's world, and the executor that applies a Plan."""
