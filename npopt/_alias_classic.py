"""Issue 3 staging module for the 'classic' family (optimistic gradient,
rprop, adadelta): its aliases, and the public transforms/states it exports
through __all__ (merged into npopt/alias.py and npopt/__init__.py when the
family is complete)."""
__all__ = []
