"""Recognition capabilities, one module each, all under the contract in `base`."""
