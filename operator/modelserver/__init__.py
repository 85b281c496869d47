"""The reference model server: serves a serialized scikit-learn pipeline over the
Open Inference Protocol and exports the metrics a rollout's analysis needs,
including input-data and prediction drift. It knows nothing of the operator."""
