"""What touches git and the work tree: commits, the repository lock, the
work-tree checks, and paths and globs."""
