"""Landmark extraction: photos (AI Hub 82 archives, image folders, videos) to a schema-v1 store."""
