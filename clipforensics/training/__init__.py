"""Everything to do with training: config, the Lightning module, callbacks, fit, losses."""
