"""Organizations of every kind: authorities, carriers, and the places parcels are handed out."""
