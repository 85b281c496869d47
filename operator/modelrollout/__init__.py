"""modelrollout: progressive delivery of ML model servers on Kubernetes.

The package holds the operator (API models, decision core, I/O adapters, Kopf
handlers) and its command line; the reference model server is `modelserver`.
"""

__version__ = "0.1.0"
