"""Contact directories: whom a municipality's pickup-point staff should call, from every source."""
