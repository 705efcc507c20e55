"""Diffusion-LM training pipeline for DLM Studio (see training/README.md)."""
