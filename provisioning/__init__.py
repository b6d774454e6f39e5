"""Technician provisioning: site CA, device bundles, broker configuration, install."""
