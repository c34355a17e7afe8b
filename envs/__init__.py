"""Gymnasium-facing parts of skillplan: registration, wrappers and scripted demonstrators."""
