"""TMN: the coordination API for Tillsammans mot nätdroger."""
