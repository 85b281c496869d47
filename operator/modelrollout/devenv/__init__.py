"""The local development environment: a real control plane built from Go modules
and run by kwokctl with simulated nodes, and a real Prometheus.

This is tooling for the demo and the tests, not part of the operator: it starts
processes on this machine and never talks to any cluster but the one it made.
"""
