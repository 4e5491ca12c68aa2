"""HTTP: the Sector and RosettaChat dialects, and ops endpoints. Handlers validate and read; writes go to actors."""
