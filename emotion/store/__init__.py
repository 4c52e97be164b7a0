"""The landmark store: schema v1 (the one contract between producers and training), class
names, and reading and writing."""
