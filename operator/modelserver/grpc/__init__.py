"""Python modules generated from grpc_predict_v2.proto (the Open Inference Protocol's gRPC
messages and service); regenerate with `make grpc-stubs`, never edit by hand."""
