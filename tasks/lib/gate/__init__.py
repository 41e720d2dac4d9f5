"""The schema gate: proves from a Dockerfile that an image is built from the shared schema."""
