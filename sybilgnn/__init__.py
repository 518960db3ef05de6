"""sybilgnn: find coordinated fleets of fake accounts with a heterogeneous GNN over Neo4j."""

__version__ = "0.1.0"
