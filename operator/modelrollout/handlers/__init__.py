"""Kopf on the outside: parse -> observe -> plan -> execute -> one status patch.

No rollout logic lives here; see `modelrollout.rollout` for the decisions and
`modelrollout.kube` for what touches the cluster.
"""
