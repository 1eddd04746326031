"""Networks on three levels (national, regional, local) and their members."""
