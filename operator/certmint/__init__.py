"""certmint: workload certificates with SPIFFE identity and authorization claims."""
