"""Inference runtimes behind one session interface, and the offline model store."""
