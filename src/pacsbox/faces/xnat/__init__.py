"""The XNAT-compatible REST face (what xnatpy and pyxnat use)."""
