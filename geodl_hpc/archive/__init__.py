"""Archives: Zarr v3 raster stacks and waveform archives, catalogs; ingest, open, validate, provenance."""
