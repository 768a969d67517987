"""Fine-tune the hub model on this region's data, gate it against the hub, register the adapter."""
