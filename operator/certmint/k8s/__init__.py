"""The Kubernetes API: the client that writes, the informer that lists and watches, the Lease."""
