"""Plan -> response: the only package that loops over attempts."""
